"""KID and FID between two sets of image features (Lethe uses CLIP image features: no Inception download).

KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets; unbiased, so it is usable at the few
hundred images an evaluation draws. FID (Heusel et al. 2017): the Frechet distance between
Gaussians fitted to each set, ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2); biased at small n,
so callers report it only from `FID_MIN_SAMPLES` images per set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FID_MIN_SAMPLES = 500  # below this the covariance estimate, and so FID, mostly measures sample size


@dataclass(frozen=True)
class KID:
    mean: float
    std: float  # over subsets; 0 when the whole sets were used once
    subsets: int
    subset_size: int


def _cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a @ b.T) / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic kernel.

    Equal sizes: Gretton et al.'s U-statistic over pairs i != j, which also leaves out k(x_i, y_i);
    so a set against itself is exactly 0, and paired sets (Lethe draws before/after from the same
    noise) carry no pairing bias. Unequal sizes: KID's form, the within-set diagonals left out."""
    kxx, kyy, kxy = _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)
    m, n = len(x), len(y)
    if m == n:
        return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy) - 2.0 * (kxy.sum() - np.trace(kxy)))
                     / (m * (m - 1)))
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kernel_inception_distance(x, y, subset_size: int = 1000, subsets: int = 100, seed: int = 0) -> KID:
    """KID between feature sets x (m, d) and y (n, d). With fewer samples than `subset_size` the
    whole sets are compared once; otherwise `subsets` random subsets of that size are averaged."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"KID needs two (n, d) feature arrays of the same d, got {x.shape} and {y.shape}")
    if min(len(x), len(y)) < 2:
        raise ValueError("KID needs at least 2 samples per set")
    size = min(subset_size, len(x), len(y))
    if size == len(x) == len(y):
        return KID(mmd2_unbiased(x, y), 0.0, 1, size)
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
              for _ in range(subsets)]
    return KID(float(np.mean(values)), float(np.std(values)), subsets, size)


def frechet_distance(x, y) -> float:
    """FID between feature sets x (m, d) and y (n, d).

    Tr((S1 S2)^1/2) is computed as the sum of square roots of the eigenvalues of the symmetric
    S1^1/2 S2 S1^1/2 (same spectrum), which avoids scipy's non-symmetric sqrtm and its complex parts."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    s1, s2 = np.atleast_2d(s1), np.atleast_2d(s2)
    w, v = np.linalg.eigh(s1)
    s1_half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(s1_half @ s2 @ s1_half), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * cross)
