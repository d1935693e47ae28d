"""Labelled image grids: one row per prompt, a caption under each image (for demos and reports)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PASS_COLOUR, FAIL_COLOUR, TEXT_COLOUR = (40, 160, 60), (200, 50, 50), (20, 20, 20)


@dataclass(frozen=True)
class Cell:
    image: Image.Image | np.ndarray
    label: str = ""
    ok: bool | None = None  # colours the label: green pass, red fail, black neutral


def _as_image(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(arr)


def labelled_grid(rows: list[tuple[str, list[Cell]]], cell_size: int = 96, title: str | None = None) -> Image.Image:
    """Rows of (row label, cells). Small images are upscaled with nearest-neighbour so pixels stay honest."""
    font = ImageFont.load_default()
    label_w, text_h, pad = 170, 14, 4
    top = text_h + 2 * pad if title else 0
    n_cols = max((len(cells) for _, cells in rows), default=0)
    width = label_w + n_cols * (cell_size + pad) + pad
    height = top + len(rows) * (cell_size + text_h + 2 * pad) + pad
    canvas = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), title, fill=TEXT_COLOUR, font=font)
    for r, (row_label, cells) in enumerate(rows):
        y = top + pad + r * (cell_size + text_h + 2 * pad)
        draw.text((pad, y + cell_size // 2 - text_h // 2), row_label[:28], fill=TEXT_COLOUR, font=font)
        for c, cell in enumerate(cells):
            x = label_w + c * (cell_size + pad)
            canvas.paste(_as_image(cell.image).resize((cell_size, cell_size), Image.NEAREST), (x, y))
            colour = TEXT_COLOUR if cell.ok is None else (PASS_COLOUR if cell.ok else FAIL_COLOUR)
            draw.text((x, y + cell_size + 2), cell.label[:16], fill=colour, font=font)
    return canvas
