"""The original model's images, drawn once: cached on disk by what fixes them.

An image of the original model is fixed by its weights (sha256), device and dtype, the sampler settings,
the prompt and the image's own seed (generation.image_seed): every ticket, release and re-run that asks
for the same prompt on the same base gets the same pixels, so they are drawn once and read back after.
One .npy file per prompt holds images 0..n-1; a request for more images than are stored draws the missing ones
and stores the prompt's images 0..n-1.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .generation import count_for, generate


class OriginalImageCache:
    def __init__(self, folder: str | Path, weights_sha256: str, device: str, dtype: str):
        self.folder = Path(folder)
        self.model = {"weights_sha256": weights_sha256, "device": str(device).split(":")[0], "dtype": str(dtype)}
        self.hits = self.misses = 0  # images read back / drawn

    def _path(self, prompt: str, sampling, seed: int) -> Path:
        key = json.dumps({**self.model, "sampling": sampling.model_dump(), "seed": seed, "prompt": prompt},
                         sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}.npy"

    def generate(self, pipe, prompts: list[str], images_per_prompt: int | Mapping[str, int], sampling, seed: int = 0,
                 start: int | Mapping[str, int] = 0, **kwargs) -> dict[str, np.ndarray]:
        """Like generation.generate (same arguments, same images), reading what is cached."""
        out, stored = {}, {}
        for prompt in dict.fromkeys(prompts):
            try:
                stored[prompt] = np.load(self._path(prompt, sampling, seed), allow_pickle=False)
            except (OSError, ValueError):
                stored[prompt] = None
        have = {p: 0 if s is None else len(s) for p, s in stored.items()}
        missing = [p for p in stored if have[p] < count_for(images_per_prompt, p)]
        if missing:
            drawn = generate(pipe, missing, images_per_prompt, sampling, seed=seed, start=have, **kwargs)
            self.folder.mkdir(parents=True, exist_ok=True)
            for prompt, images in drawn.items():
                whole = images if stored[prompt] is None else np.concatenate([stored[prompt], images])
                path = self._path(prompt, sampling, seed)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                with open(tmp, "wb") as f:  # written whole, then renamed: a reader never sees half a file
                    np.save(f, whole, allow_pickle=False)
                os.replace(tmp, path)
                self.misses += len(images)
                stored[prompt] = whole
        for prompt in stored:
            first, n = count_for(start, prompt), count_for(images_per_prompt, prompt)
            out[prompt] = stored[prompt][first:n]
            self.hits += max(0, min(n, have[prompt]) - first)
        return out

    def as_dict(self) -> dict:
        return {"folder": str(self.folder), "images_read": self.hits, "images_drawn": self.misses}
