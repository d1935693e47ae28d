"""Augmentations that make the detector and CLIP robust to generated (blurry, noisy) images."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of x (N, C, H, W) with its own sigma (N,); sigma 0 leaves it unchanged."""
    radius = 3
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    s = sigma.clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (offsets[None] / s) ** 2)
    k = k / k.sum(1, keepdim=True)  # (N, 2r+1)
    n, c, h, w = x.shape
    y = F.pad(x, (radius,) * 4, mode="replicate").reshape(1, n * c, h + 2 * radius, w + 2 * radius)
    kx = k.repeat_interleave(c, 0)[:, None, None, :]
    ky = k.repeat_interleave(c, 0)[:, None, :, None]
    y = F.conv2d(F.conv2d(y, kx, groups=n * c), ky, groups=n * c)
    return y.reshape(n, c, h, w)


def degrade(x: torch.Tensor, generator: torch.Generator, max_sigma: float = 1.2,
            noise: float = 0.04) -> torch.Tensor:
    """Random blur, pixel noise and mild brightness change on images in [0, 1]."""
    n = x.shape[0]
    sigma = torch.rand(n, generator=generator) * max_sigma
    x = gaussian_blur(x, sigma)
    x = x * (1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.16)
    x = x + torch.randn(x.shape, generator=generator) * noise * torch.rand(n, 1, 1, 1, generator=generator)
    return x.clamp(0, 1)
