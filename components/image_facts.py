"""Per-image facts of a ticket's image set: the table that the Great Expectations suite validates.

Reading is defensive: the header is read first and an image is decoded only when its header says
it is small enough (a decompression bomb is refused before a single pixel is allocated), and any
file that does not decode is a fact ("decodable: False", with the reason), never an exception.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HASH_BITS = 64


@dataclass(frozen=True)
class ImageFacts:
    path: str  # as listed in the ticket (relative to its folder)
    decodable: bool
    error: str | None  # why it did not decode
    format: str | None  # PIL's name: PNG, JPEG, WEBP, ...
    mode: str | None
    width: int | None
    height: int | None
    bytes: int
    sha256: str
    phash: str | None  # 64-bit DCT perceptual hash, hex
    near_duplicate_of: str | None  # the first earlier image within the near-duplicate distance


def perceptual_hash(image: Image.Image) -> int:
    """DCT pHash: greyscale 32x32, the 8x8 lowest frequencies, each bit = above their median."""
    from scipy.fft import dctn

    grey = np.asarray(image.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def read_facts(path: Path, listed_as: str, max_pixels: int) -> tuple[ImageFacts, int | None]:
    """Facts of one file, and its perceptual hash (None when it was not decoded)."""
    data = path.read_bytes()
    common = {"path": listed_as, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    fmt = mode = width = height = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # lazy: reads the header only
                fmt, mode, (width, height) = image.format, image.mode, image.size
                if width * height > max_pixels:
                    raise ValueError(f"header says {width}x{height} = {width * height} pixels, "
                                     f"more than max_pixels {max_pixels}; not decoded")
                image.load()
                phash = perceptual_hash(image)
    except Exception as err:  # any decoder failure is a fact about the file, reported per file
        reason = str(err) or type(err).__name__
        return ImageFacts(**common, decodable=False, error=reason, format=fmt, mode=mode, width=width,
                          height=height, phash=None, near_duplicate_of=None), None
    return ImageFacts(**common, decodable=True, error=None, format=fmt, mode=mode, width=width, height=height,
                      phash=f"{phash:016x}", near_duplicate_of=None), phash


def image_facts(paths: list[Path], listed_as: list[str], max_pixels: int, near_duplicate_bits: int) -> list[ImageFacts]:
    """Facts for every image; `near_duplicate_of` names an earlier image whose pHash is within
    `near_duplicate_bits` (exact copies are caught by the sha256 column)."""
    facts, hashes = [], []
    for path, name in zip(paths, listed_as):
        fact, phash = read_facts(path, name, max_pixels)
        near = next((earlier.path for earlier, h in zip(facts, hashes)
                     if phash is not None and h is not None and earlier.sha256 != fact.sha256
                     and hamming(phash, h) <= near_duplicate_bits), None)
        facts.append(ImageFacts(**{**asdict(fact), "near_duplicate_of": near}))
        hashes.append(phash)
    return facts
