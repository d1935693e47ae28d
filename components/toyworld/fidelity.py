"""Prompt fidelity of a toy pipeline: does it draw what the caption says? Measured by the detector."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .detector import ConceptDetector
from .shapes import all_captions
from .world import DEFAULT_GUIDANCE, DEFAULT_STEPS


@dataclass
class Fidelity:
    per_caption: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def shape_accuracy(self) -> float:
        return float(np.mean([v["shape"] for v in self.per_caption.values()]))

    @property
    def colour_accuracy(self) -> float:
        return float(np.mean([v["colour"] for v in self.per_caption.values()]))

    @property
    def worst_caption(self) -> tuple[str, float]:
        cap = min(self.per_caption, key=lambda c: min(self.per_caption[c].values()))
        return cap, min(self.per_caption[cap].values())

    def as_dict(self) -> dict:
        cap, worst = self.worst_caption
        return {"shape_accuracy": self.shape_accuracy, "colour_accuracy": self.colour_accuracy,
                "worst_caption": cap, "worst_caption_accuracy": worst, "per_caption": self.per_caption}


@torch.no_grad()
def measure_fidelity(pipe, detector: ConceptDetector, images_per_caption: int, seed: int = 2024,
                     steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                     captions: list[str] | None = None) -> Fidelity:
    """Generate `images_per_caption` images for each caption (seeded) and score shape and colour."""
    result = Fidelity()
    for k, cap in enumerate(captions or all_captions()):
        colour, shape = cap.split()[-2:]
        generator = torch.Generator(device="cpu").manual_seed(seed + k)
        images = pipe([cap] * images_per_caption, num_inference_steps=steps, guidance_scale=guidance,
                      generator=generator, output_type="np").images
        detections = detector.detect((images * 255).round().astype(np.uint8))
        result.per_caption[cap] = {
            "shape": float(np.mean([d.shape == shape for d in detections])),
            "colour": float(np.mean([d.colour == colour for d in detections])),
        }
    return result
