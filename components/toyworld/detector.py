"""The toy world's concept detector: a small CNN with a shape head and a colour head.

The shape head has an "other" class (rings, blobs, partial shapes, noise), so an erased image is
not forced into some shape class. Saved like a diffusers model: config.json + model.safetensors.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .shapes import COLOUR_NAMES, DETECTOR_SHAPES

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


@dataclass(frozen=True)
class Detection:
    shape: str
    shape_confidence: float
    colour: str
    colour_confidence: float


class ConceptDetector(nn.Module):
    def __init__(self, shapes: tuple[str, ...] = DETECTOR_SHAPES, colours: tuple[str, ...] = COLOUR_NAMES,
                 width: int = 32):
        super().__init__()
        self.shapes, self.colours, self.width = tuple(shapes), tuple(colours), width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(block(3, width), nn.MaxPool2d(2), block(width, 2 * width), nn.MaxPool2d(2),
                                      block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.shape_head = nn.Linear(4 * width, len(self.shapes))
        self.colour_head = nn.Linear(4 * width, len(self.colours))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images: float (N, 3, H, W) in [0, 1]; returns (shape logits, colour logits)."""
        h = self.features(images * 2 - 1)
        return self.shape_head(h), self.colour_head(h)

    @torch.no_grad()
    def detect(self, images: np.ndarray | torch.Tensor | list) -> list[Detection]:
        """Classify uint8 HWC arrays / PIL images / a float NCHW tensor in [0, 1]."""
        self.eval()
        x = to_tensor(images).to(next(self.parameters()).device)
        shape_p, colour_p = (torch.softmax(logits, -1) for logits in self(x))
        out = []
        for sp, cp in zip(shape_p, colour_p):
            si, ci = int(sp.argmax()), int(cp.argmax())
            out.append(Detection(self.shapes[si], float(sp[si]), self.colours[ci], float(cp[ci])))
        return out

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": type(self).__name__, "shapes": list(self.shapes),
                  "colours": list(self.colours), "width": self.width}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "ConceptDetector":
        folder = Path(folder)
        config = json.loads((folder / CONFIG_NAME).read_text())
        model = cls(tuple(config["shapes"]), tuple(config["colours"]), config["width"])
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
        return model.eval()


def to_tensor(images) -> torch.Tensor:
    """uint8 HWC array(s) or PIL images -> float NCHW in [0, 1]; float tensors pass through."""
    if isinstance(images, torch.Tensor):
        return images.float()
    if isinstance(images, list):
        images = np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im) for im in images])
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0
