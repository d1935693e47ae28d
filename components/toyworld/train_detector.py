"""Train the toy concept detector on ground-truth rendered images (clean shapes + 'other')."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .augment import degrade
from .detector import ConceptDetector, to_tensor
from .shapes import COLOUR_NAMES, DETECTOR_SHAPES, OTHER, OTHER_KINDS, render_other, sample_shapes


def detector_dataset(n_shapes: int, n_other: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) in [0, 1], shape labels, colour labels (-1 = no single colour)."""
    images, shapes, colours = sample_shapes(n_shapes, rng)
    others = [render_other(OTHER_KINDS[rng.integers(len(OTHER_KINDS))], rng) for _ in range(n_other)]
    all_images = np.concatenate([images, np.stack([o.image for o in others])]) if others else images
    shape_ids = [DETECTOR_SHAPES.index(s) for s in shapes] + [DETECTOR_SHAPES.index(OTHER)] * n_other
    colour_ids = [COLOUR_NAMES.index(c) for c in colours] + [
        COLOUR_NAMES.index(o.colour) if o.colour else -1 for o in others]
    return to_tensor(all_images), torch.tensor(shape_ids), torch.tensor(colour_ids)


def train_detector(steps: int = 1500, n_images: int = 32000, batch_size: int = 128, seed: int = 0,
                   log: Callable[[str], None] = print) -> ConceptDetector:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, shape_ids, colour_ids = detector_dataset(n_images * 3 // 4, n_images // 4, rng)
    gen = torch.Generator().manual_seed(seed)
    model = ConceptDetector()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    model.train()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(images), (batch_size,), generator=gen)
        x = degrade(images[idx], gen)
        shape_logits, colour_logits = model(x)
        loss = F.cross_entropy(shape_logits, shape_ids[idx]) + F.cross_entropy(
            colour_logits, colour_ids[idx], ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            log(f"detector step {step}/{steps} loss {loss.item():.4f}")
    return model.eval()


@torch.no_grad()
def detector_accuracy(model: ConceptDetector, n: int = 2000, seed: int = 12345) -> dict[str, float]:
    """Accuracy on freshly rendered held-out images (a seed never used in training)."""
    rng = np.random.default_rng(seed)
    images, shape_ids, colour_ids = detector_dataset(n, n // 4, rng)
    model.eval()
    shape_logits, colour_logits = model(images)
    has_colour = colour_ids >= 0
    return {
        "shape_accuracy": float((shape_logits.argmax(1) == shape_ids).float().mean()),
        "colour_accuracy": float((colour_logits.argmax(1)[has_colour] == colour_ids[has_colour]).float().mean()),
        "other_recall": float((shape_logits.argmax(1)[shape_ids == DETECTOR_SHAPES.index(OTHER)]
                               == DETECTOR_SHAPES.index(OTHER)).float().mean()),
    }
