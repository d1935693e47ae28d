"""Synthetic 32x32 images of coloured shapes, rendered in numpy, with captions.

Shapes are drawn on a 4x supersampled grid and averaged down, so edges are anti-aliased
like real (blurry) images rather than hard pixel masks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 185, 50),
    "blue": (45, 75, 225),
    "yellow": (225, 205, 35),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
# Detector label for anything that is not one clean shape: rings, blobs, partial shapes, noise.
OTHER = "other"
DETECTOR_SHAPES: tuple[str, ...] = SHAPES + (OTHER,)
# Deformations the detector must not call a shape (erased outputs look like these).
OTHER_KINDS: tuple[str, ...] = ("ring", "blob", "half", "noise", "empty", "outline", "two")

IMAGE_SIZE = 32
_SUPERSAMPLE = 4
_BACKGROUND = 42


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # uint8, (32, 32, 3)
    shape: str  # one of DETECTOR_SHAPES
    colour: str | None  # None when the image has no single dominant colour


def caption(colour: str, shape: str) -> str:
    return f"a {colour} {shape}"


def all_captions() -> list[str]:
    """The 16 captions the toy world is measured on: every colour x shape."""
    return [caption(c, s) for s in SHAPES for c in COLOUR_NAMES]


def _grid() -> tuple[np.ndarray, np.ndarray]:
    n = IMAGE_SIZE * _SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / _SUPERSAMPLE
    return np.meshgrid(coords, coords)  # x, y in pixel units


_X, _Y = _grid()


def shape_mask(shape: str, cx: float, cy: float, size: float, angle: float = 0.0) -> np.ndarray:
    """Supersampled boolean mask of one shape of diameter `size` centred at (cx, cy)."""
    x, y = _X - cx, _Y - cy
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        x, y = c * x + s * y, -s * x + c * y
    r = size / 2
    if shape == "circle":
        return x**2 + y**2 <= r**2
    if shape == "square":
        h = r * 0.85
        return (np.abs(x) <= h) & (np.abs(y) <= h)
    if shape == "triangle":
        # Upward isosceles triangle: apex at top, base at bottom.
        top, bottom = -r, r * 0.8
        half_width = r * (y - top) / (bottom - top)
        return (y >= top) & (y <= bottom) & (np.abs(x) <= half_width)
    if shape == "cross":
        arm = r * 0.33
        return ((np.abs(x) <= arm) & (np.abs(y) <= r)) | ((np.abs(y) <= arm) & (np.abs(x) <= r))
    raise ValueError(f"unknown shape {shape!r}")


def _downsample(mask: np.ndarray) -> np.ndarray:
    s = _SUPERSAMPLE
    return mask.reshape(IMAGE_SIZE, s, IMAGE_SIZE, s).mean(axis=(1, 3))


def _background(rng: np.random.Generator) -> np.ndarray:
    level = _BACKGROUND + rng.integers(-6, 7)
    img = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), float(level))
    return img + rng.normal(0, 1.5, img.shape)


def _colour_rgb(colour: str, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.array(COLOURS[colour], float) + rng.integers(-12, 13, 3), 0, 255)


def _composite(img: np.ndarray, alpha: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return img * (1 - a) + rgb * a


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _placement(rng: np.random.Generator, lo: float = 12.0, hi: float = 22.0) -> tuple[float, float, float]:
    size = rng.uniform(lo, hi)
    margin = size / 2 + 1
    cx = rng.uniform(margin, IMAGE_SIZE - margin)
    cy = rng.uniform(margin, IMAGE_SIZE - margin)
    return cx, cy, size


def render_shape(shape: str, colour: str, rng: np.random.Generator) -> np.ndarray:
    """One clean image of `colour` `shape` at a random size and position."""
    cx, cy, size = _placement(rng)
    alpha = _downsample(shape_mask(shape, cx, cy, size))
    return _to_uint8(_composite(_background(rng), alpha, _colour_rgb(colour, rng)))


def render_other(kind: str, rng: np.random.Generator) -> Sample:
    """An image that is deliberately not one clean shape (the detector's 'other' class)."""
    img = _background(rng)
    colour = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    rgb = _colour_rgb(colour, rng)
    cx, cy, size = _placement(rng)
    if kind == "ring":
        outer = shape_mask("circle", cx, cy, size)
        inner = shape_mask("circle", cx, cy, size * rng.uniform(0.45, 0.75))
        alpha = _downsample(outer & ~inner)
    elif kind == "outline":
        shape = SHAPES[rng.integers(len(SHAPES))]
        outer = shape_mask(shape, cx, cy, size)
        inner = shape_mask(shape, cx, cy, size * rng.uniform(0.4, 0.65))
        alpha = _downsample(outer & ~inner)
    elif kind == "half":
        shape = SHAPES[rng.integers(len(SHAPES))]
        keep = rng.uniform(0.3, 0.55)
        axis = rng.integers(4)
        m = shape_mask(shape, cx, cy, size)
        lo_x, lo_y = cx - size / 2, cy - size / 2
        cut = {0: _X < lo_x + keep * size, 1: _X > lo_x + (1 - keep) * size,
               2: _Y < lo_y + keep * size, 3: _Y > lo_y + (1 - keep) * size}[int(axis)]
        alpha = _downsample(m & cut)
    elif kind == "blob":
        # Smooth random field thresholded: irregular blobs with no clean outline.
        coarse = rng.normal(0, 1, (6, 6))
        field = np.kron(coarse, np.ones((IMAGE_SIZE * _SUPERSAMPLE // 6 + 1,) * 2))
        field = field[: IMAGE_SIZE * _SUPERSAMPLE, : IMAGE_SIZE * _SUPERSAMPLE]
        alpha = _downsample(field > rng.uniform(0.4, 1.0))
        alpha = np.clip(alpha * rng.uniform(0.6, 1.0), 0, 1)
    elif kind == "noise":
        noise = rng.uniform(0, 255, img.shape) * rng.uniform(0.2, 1.0)
        return Sample(_to_uint8(img * 0.4 + noise * 0.6), OTHER, None)
    elif kind == "empty":
        return Sample(_to_uint8(img), OTHER, None)
    elif kind == "two":
        # Two different shapes: not "one" concept; colour kept so colour head still trains.
        s1, s2 = rng.choice(len(SHAPES), 2, replace=False)
        a1 = _downsample(shape_mask(SHAPES[s1], IMAGE_SIZE * 0.3, IMAGE_SIZE * 0.35, 10))
        a2 = _downsample(shape_mask(SHAPES[s2], IMAGE_SIZE * 0.7, IMAGE_SIZE * 0.65, 10))
        alpha = np.clip(a1 + a2, 0, 1)
    else:
        raise ValueError(f"unknown other kind {kind!r}")
    return Sample(_to_uint8(_composite(img, alpha, rgb)), OTHER, colour)


def sample_shapes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[str]]:
    """n clean images with uniformly drawn (shape, colour) labels."""
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    shapes, colours = [], []
    for i in range(n):
        s = SHAPES[rng.integers(len(SHAPES))]
        c = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
        images[i] = render_shape(s, c, rng)
        shapes.append(s)
        colours.append(c)
    return images, shapes, colours


def training_caption(colour: str, shape: str, rng: np.random.Generator) -> str:
    """Caption variety: the measured form, a photo form, and shape-only (for concept-name prompts).

    10% are empty so the model learns the unconditional prediction for classifier-free guidance.
    """
    u = rng.random()
    if u < 0.10:
        return ""
    if u < 0.65:
        return caption(colour, shape)
    if u < 0.80:
        return f"a photo of a {colour} {shape}"
    if u < 0.92:
        return f"a {shape}"
    return f"a photo of a {shape}"
