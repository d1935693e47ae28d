"""Prompt fidelity of a toy pipeline: does it draw what the caption says? Measured by the detector."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .detector import ConceptDetector, Detection
from .shapes import COLOURS, SHAPES, all_captions
from .world import DEFAULT_GUIDANCE, DEFAULT_STEPS


@dataclass
class Fidelity:
    per_caption: dict[str, dict[str, float]] = field(default_factory=dict)
    # caption -> [(uint8 image, detection)], kept only when asked for (demos, reports)
    samples: dict[str, list[tuple[np.ndarray, Detection]]] = field(default_factory=dict)

    @property
    def shape_accuracy(self) -> float:
        return float(np.mean([v["shape"] for v in self.per_caption.values()]))

    @property
    def colour_accuracy(self) -> float:
        return float(np.mean([v["colour"] for v in self.per_caption.values()]))

    @property
    def worst_caption(self) -> tuple[str, float]:
        """The caption with the lowest shape or colour accuracy, and that accuracy."""
        def worst(c: str) -> float:
            return min(self.per_caption[c]["shape"], self.per_caption[c]["colour"])
        cap = min(self.per_caption, key=worst)
        return cap, worst(cap)

    def as_dict(self) -> dict:
        cap, worst = self.worst_caption
        return {"shape_accuracy": self.shape_accuracy, "colour_accuracy": self.colour_accuracy,
                "worst_caption": cap, "worst_caption_accuracy": worst, "per_caption": self.per_caption}


@torch.no_grad()
def measure_fidelity(pipe, detector: ConceptDetector, images_per_caption: int, seed: int = 2024,
                     steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                     captions: list[str] | None = None, keep_images: bool = False,
                     on_caption=None) -> Fidelity:
    """Generate `images_per_caption` images for each caption (seeded) and score shape and colour.

    `on_caption(caption)` is called after each caption is scored (progress display)."""
    result = Fidelity()
    for k, cap in enumerate(captions or all_captions()):
        colour, shape = cap.split()[-2:]
        generator = torch.Generator(device="cpu").manual_seed(seed + k)
        images = pipe([cap] * images_per_caption, num_inference_steps=steps, guidance_scale=guidance,
                      generator=generator, output_type="np").images
        images = (images * 255).round().astype(np.uint8)
        detections = detector.detect(images)
        if keep_images:
            result.samples[cap] = list(zip(images, detections))
        result.per_caption[cap] = {
            "shape": float(np.mean([d.shape == shape for d in detections])),
            "colour": float(np.mean([d.colour == colour for d in detections])),
            "both": float(np.mean([d.colour == colour and d.shape == shape for d in detections])),
        }
        if on_caption:
            on_caption(cap)
    return result


def shape_rates(pipe, detector: ConceptDetector, images_per_caption: int, seed: int = 2024,
                shapes: tuple[str, ...] = SHAPES) -> dict[str, float]:
    """Per shape: the fraction of images drawn for "a {colour} {shape}" (every colour) that the
    detector calls that shape. For an erased shape this is its detection rate; for the others, accuracy."""
    captions = [f"a {c} {s}" for s in shapes for c in COLOURS]
    fid = measure_fidelity(pipe, detector, images_per_caption=images_per_caption, seed=seed, captions=captions)
    return {s: float(np.mean([fid.per_caption[f"a {c} {s}"]["shape"] for c in COLOURS])) for s in shapes}
