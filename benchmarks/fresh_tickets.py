"""Takedown tickets with images the project's renderer did not make: PIL-drawn, 96x96, anti-aliased,
rotated, on backgrounds and in hues of their own. For checking that what works for the example ticket
works for every concept of the toy world (shapes and colours).

    python -m benchmarks.fresh_tickets OUT_DIR [--seed 7]   # one ticket folder per concept
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "cross")
# Hues near, not equal to, the toy world's palette: a rights holder's pictures are not the training data.
HUES = {"red": (205, 40, 45), "green": (50, 170, 70), "blue": (45, 75, 210), "yellow": (225, 205, 40)}
SIZE, SUPER = 96, 4


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]] | None:
    def rot(points):
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]
    if shape == "square":
        return rot([(-r, -r), (r, -r), (r, r), (-r, r)])
    if shape == "triangle":
        return rot([(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)])
    if shape == "cross":
        w = r / 3
        return rot([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)])
    return None


# Where image i's shape sits (fractions of the side, then jittered): pictures of one concept taken
# apart, so no two look like near duplicates to the ticket's perceptual-hash rule.
SPOTS = ((0.32, 0.32), (0.68, 0.68), (0.68, 0.32), (0.32, 0.68), (0.5, 0.5))


def draw(shape: str, colour: str, rng: np.random.Generator, spot: int = 0) -> Image.Image:
    big = SIZE * SUPER
    grey = int(rng.integers(30, 80))
    image = Image.new("RGB", (big, big), (grey, grey, int(grey * rng.uniform(0.9, 1.1))))
    pen = ImageDraw.Draw(image)
    r = rng.uniform(0.2, 0.28) * big
    cx, cy = np.clip((np.array(SPOTS[spot % len(SPOTS)]) + rng.uniform(-0.05, 0.05, 2)) * big, r + 8, big - r - 8)
    fill = tuple(int(np.clip(v + rng.integers(-15, 16), 0, 255)) for v in HUES[colour])
    points = _polygon(shape, cx, cy, r, rng.uniform(-0.25, 0.25))
    if points is None:
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        pen.polygon(points, fill=fill)
    small = image.resize((SIZE, SIZE), Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.4))
    pixels = np.asarray(small).astype(float) + rng.normal(0, 2.0, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


CONCEPTS = (*SHAPES, *HUES)  # every toy concept, in the order that gives each its ticket seed
FIRST_SEED = 7


def concept_ticket(tickets: Path, concept: str, first_seed: int = FIRST_SEED) -> Path:
    """The fresh ticket the concept harnesses use: in tickets/CONCEPT, seed first_seed + the concept's index in
    CONCEPTS, so a concept gets the same images whichever others are run."""
    return write_ticket(tickets / concept, concept, first_seed + CONCEPTS.index(concept))


def write_ticket(folder: Path, concept: str, seed: int, n_images: int = 5) -> Path:
    """A ticket for a shape (drawn in varied colours) or a colour (on varied shapes)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n_images):
        if concept in SHAPES:
            shape, colour = concept, list(HUES)[i % len(HUES)]
        else:
            shape, colour = SHAPES[i % len(SHAPES)], concept
        name = f"{concept}_{i + 1}.png"
        draw(shape, colour, rng, i).save(folder / name)
        names.append(name)
    ticket = {"ticket_id": f"FRESH-{concept.upper()}", "concept": concept, "kind": "object", "images": names,
              "requester": "Lethe generality check", "legal_basis": "test: toy world, no real rights",
              "created_at": "2026-12-01T09:00:00+00:00", "target_model": "lethe-toyworld"}
    path = folder / "ticket.yaml"
    path.write_text(yaml.safe_dump(ticket, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for k, concept in enumerate([*SHAPES, *HUES]):
        print(write_ticket(args.out / concept, concept, args.seed + k))


if __name__ == "__main__":
    main()
