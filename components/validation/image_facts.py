"""Per-image facts of a ticket's image set: the table that the Great Expectations suite validates.

Reading is defensive: a file over max_bytes is not read at all, the header is read first and an image
is decoded only when its header says it is small enough (a decompression bomb is refused before a
single pixel is allocated), and any file that does not decode is a fact ("decodable: False", with the
reason), never an exception.

Content facts say whether an image can show anything: how many frames it has, how much of it is
visible (alpha), how much its pixels vary (a uniform colour does not), and whether neighbouring pixels
differ as much as independent random values do (pure noise). They are measured on a copy reduced to
at most STATS_SIDE pixels a side, so their cost does not grow with the image; box-reducing keeps
noise noise and a photo photo-like.
"""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..domain.file_errors import UnreadableFile, read_regular_file

HASH_BITS = 64
STATS_SIDE = 256
VISIBLE_ALPHA = 32  # of 255: a pixel fainter than this is not seen
NOISE_SCALES = (1, 2, 4)  # pixel blocks the noise test looks at: JPEG-smoothed or 2x-upscaled noise is caught at 2-4
NOISE_MIN_SIDE = 16  # a coarser view has too few pixels for a stable ratio (a 32 px shape at 8x8 looks rough)


@dataclass(frozen=True)
class ImageFacts:
    path: str  # as listed in the ticket (relative to its folder)
    decodable: bool | None  # None: not read (over max_bytes)
    error: str | None  # why it did not decode
    format: str | None  # PIL's name: PNG, JPEG, WEBP, ...
    mode: str | None
    width: int | None
    height: int | None
    bytes: int
    sha256: str | None  # None: not read (over max_bytes, or not a readable file)
    phash: str | None  # 64-bit DCT perceptual hash, hex
    near_duplicate_of: str | None  # the first earlier image within the near-duplicate distance
    frames: int | None = None  # more than one: an animation or a multi-page file
    visible_fraction: float | None = None  # share of pixels with alpha >= VISIBLE_ALPHA (1.0 without alpha)
    pixel_std: float | None = None  # of the RGB values, 0-255 (0: one uniform colour)
    noise_ratio: float | None = None  # see noise_ratio(); ~1 for independent random pixels


def perceptual_hash(image: Image.Image) -> int:
    """DCT pHash: greyscale 32x32, the 8x8 lowest frequencies, each bit = above their median."""
    from scipy.fft import dctn

    grey = np.asarray(image.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def noise_ratio(pixels: np.ndarray) -> float | None:
    """How much neighbouring pixels differ, relative to how much all pixels vary: the mean squared
    difference of horizontal and vertical neighbours over twice the variance. Independent random pixels
    give 1 (E[(a - b)^2] = 2 var); a picture, whose neighbours are alike, far less. The largest value over
    NOISE_SCALES (means of s x s blocks); None for an image too small or of one colour."""
    ratios = []
    for s in NOISE_SCALES:
        h, w = (pixels.shape[0] // s) * s, (pixels.shape[1] // s) * s
        if min(h, w) // s < NOISE_MIN_SIDE:
            break
        blocks = pixels[:h, :w].reshape(h // s, s, w // s, s, -1).mean(axis=(1, 3))
        variance = blocks.reshape(-1, blocks.shape[-1]).var(axis=0).mean()
        if variance < 1e-6:
            break
        neighbours = (np.square(np.diff(blocks, axis=0)).mean() + np.square(np.diff(blocks, axis=1)).mean()) / 2
        ratios.append(float(neighbours / (2 * variance)))
    return max(ratios) if ratios else None


def content_facts(image: Image.Image) -> dict:
    """frames, visible_fraction, pixel_std, noise_ratio of a decoded image (see ImageFacts)."""
    reduce_by = max(1, math.ceil(max(image.size) / STATS_SIDE))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    small = image.convert("RGBA" if has_alpha else "RGB")
    small = small.reduce(reduce_by) if reduce_by > 1 else small
    visible = float((np.asarray(small.getchannel("A")) >= VISIBLE_ALPHA).mean()) if has_alpha else 1.0
    # What training sees: it reads images with convert("RGB"), which drops alpha.
    pixels = np.asarray(small.convert("RGB"), dtype=np.float64)
    return {"frames": int(getattr(image, "n_frames", 1)), "visible_fraction": visible,
            "pixel_std": float(math.sqrt(pixels.reshape(-1, 3).var(axis=0).mean())), "noise_ratio": noise_ratio(pixels)}


def read_facts(path: Path, listed_as: str, max_pixels: int, max_bytes: int | None = None) -> tuple[ImageFacts, int | None]:
    """Facts of one file, and its perceptual hash (None when it was not decoded). A file over
    `max_bytes` is not read (the bytes rule names it)."""
    blank = {"path": listed_as, "format": None, "mode": None, "width": None, "height": None, "phash": None,
             "near_duplicate_of": None}
    try:
        size = os.stat(path).st_size
        if max_bytes is not None and size > max_bytes:
            return ImageFacts(**blank, bytes=size, sha256=None, decodable=None, error="not read: over max_bytes"), None
        data = read_regular_file(path)
    except (OSError, ValueError) as err:  # UnreadableFile, or the file went away
        reason = f"the file {err}" if isinstance(err, UnreadableFile) else (str(err) or type(err).__name__)
        return ImageFacts(**blank, bytes=0, sha256=None, decodable=False, error=reason), None
    common = {"path": listed_as, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    fmt = mode = width = height = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a decoder's complaint ("Corrupt EXIF data") is not news
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # lazy: reads the header only
                fmt, mode, (width, height) = image.format, image.mode, image.size
                if width * height > max_pixels:
                    raise ValueError(f"header says {width}x{height} = {width * height} pixels, "
                                     f"more than max_pixels {max_pixels}; not decoded")
                image.load()
                phash = perceptual_hash(image)
                content = content_facts(image)
    except Exception as err:  # any decoder failure is a fact about the file, reported per file
        reason = str(err) or type(err).__name__
        return ImageFacts(**common, decodable=False, error=reason, format=fmt, mode=mode, width=width,
                          height=height, phash=None, near_duplicate_of=None), None
    return ImageFacts(**common, decodable=True, error=None, format=fmt, mode=mode, width=width, height=height,
                      phash=f"{phash:016x}", near_duplicate_of=None, **content), phash


def image_facts(paths: list[Path], listed_as: list[str], max_pixels: int, near_duplicate_bits: int,
                max_bytes: int | None = None) -> list[ImageFacts]:
    """Facts for every image; `near_duplicate_of` names an earlier image whose pHash is within
    `near_duplicate_bits` (exact copies are caught by the sha256 column)."""
    facts, hashes = [], []
    for path, name in zip(paths, listed_as):
        fact, phash = read_facts(path, name, max_pixels, max_bytes)
        near = next((earlier.path for earlier, h in zip(facts, hashes)
                     if phash is not None and h is not None and earlier.sha256 != fact.sha256
                     and hamming(phash, h) <= near_duplicate_bits), None)
        facts.append(ImageFacts(**{**asdict(fact), "near_duplicate_of": near}))
        hashes.append(phash)
    return facts
