"""95% Wilson score intervals for rates measured on a few images, and the pessimistic end of a drop.

Wilson rather than the normal approximation: it stays inside [0, 1] and is honest at 0/n, where the
normal interval collapses to a point. At 0 of n the upper end is z^2 / (n + z^2): 0/8 -> 32.4%,
0/35 -> 9.9%, 0/80 -> 4.6%. So a 10% bar needs at least 35 clean images before it can pass.

A sequential evaluation looks at its rates more than once (sequential.py); each look then uses a wider
interval (`z` from `looks_z`), so that the chance that any look passes a rate that is really over its bar
stays within the same 2.5% as one look at 95%.
"""
from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95%


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for `successes` out of `n` (n >= 1)."""
    if n <= 0:
        raise ValueError("a rate needs at least one observation")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} must lie in [0, {n}]")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exact at the ends: rounding must not lift 0/n above 0 (the estimate would fall outside its interval)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def rate_with_interval(flags, z: float = Z95) -> dict[str, float]:
    """{"rate", "low", "high", "n"} of a sequence of booleans."""
    flags = [bool(f) for f in flags]
    k, n = sum(flags), len(flags)
    low, high = wilson(k, n, z)
    return {"rate": k / n, "low": low, "high": high, "n": n}


def drop_with_bound(before_rate: float, after_flags, z: float = Z95) -> dict[str, float]:
    """The fall of a rate from the original's `before_rate` to the erased model's images, and its
    pessimistic (upper) end: before - the lower Wilson end of after (`low`: before - the upper end). The
    original's rate is the reference the erased model is held to, so its own sampling noise is not discounted."""
    after = rate_with_interval(after_flags, z)
    return {"drop": before_rate - after["rate"], "high": before_rate - after["low"], "low": before_rate - after["high"]}
