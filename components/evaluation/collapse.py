"""Has an erased prompt collapsed into a blank or noise image? Judged from the pixels, by any detector.

- blank: almost no variation (grey-level standard deviation below BLANK_STD of 255);
- noise: the neighbouring-pixel differences are as large as the pixels' own spread. For i.i.d. noise
  E|x - y| = 2 sigma / sqrt(pi) ~ 1.13 sigma; a drawn picture (a shape on a background, a photo) is
  smooth almost everywhere, so the ratio sits far lower (the toy world's shapes: ~0.1-0.3).
"""
from __future__ import annotations

import numpy as np

BLANK_STD = 3.0
NOISE_RATIO = 0.8


def collapse_kinds(images: np.ndarray) -> list[str | None]:
    """Per uint8 image (N, H, W, 3): "blank", "noise" or None (a picture)."""
    grey = images.astype(np.float64).mean(axis=-1)
    out = []
    for g in grey:
        std = g.std()
        if std < BLANK_STD:
            out.append("blank")
            continue
        step = (np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()) / 2
        out.append("noise" if step / std > NOISE_RATIO else None)
    return out
