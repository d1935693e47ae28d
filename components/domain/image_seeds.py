"""One seed per image, from the run seed, the prompt text and the image's index: image i of a prompt starts from
the same noise whatever the batch, the order of prompts or the device (evaluation and training use the rule)."""
from __future__ import annotations

import zlib


def image_seed(seed: int, prompt: str, index: int) -> int:
    return (seed * 1_000_003 + zlib.crc32(prompt.encode("utf-8")) * 1009 + index) % (2**63 - 1)
