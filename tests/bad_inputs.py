"""The corpus of bad inputs: every kind of wrong ticket, ticket file, image or ticket-config mismatch that
must be refused before training, each with the exact rule its message must say.

Each case starts from the example ticket (examples/tickets/erase-circle) and breaks one thing:
- TICKET_CASES: an edit of the ticket's text (str, or bytes for text that is not UTF-8);
- FILE_CASES: the file system around it (FIFOs, folders, links, JSON tickets);
- IMAGE_CASES: its first image (or the second, for duplicates), caught by the Great Expectations suite;
- CONFIG_CASES: a ticket that does not fit the run config it is run with.
`build(case, tmp_path)` makes any case into (ticket file, run config, expected rule) for the tests of
every door (tests/test_bad_inputs.py); tests/test_image_validation.py checks each kind at its own layer.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from tests.conftest import REPO, toy_config_file

EXAMPLE = REPO / "examples" / "tickets" / "erase-circle"
GOOD_TICKET = (EXAMPLE / "ticket.yaml").read_text()
TOY_CONFIG = REPO / "configs" / "toy.yaml"


def ticket_dir(tmp_path: Path, text: str | bytes = GOOD_TICKET, name: str = "ticket.yaml") -> Path:
    folder = tmp_path / "ticket"
    folder.mkdir(parents=True)
    for png in EXAMPLE.glob("*.png"):
        shutil.copy(png, folder / png.name)
    (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder / name


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height but holds almost no data (a decompression-bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


# --- ticket text --------------------------------------------------------------------------------------

def _set(field: str, value: str):
    """Replace a top-level field's line with `field: value` (value is YAML, e.g. a double-quoted string)."""
    def edit(text: str) -> str:
        lines = [f"{field}: {value}" if line.startswith(f"{field}:") else line for line in text.splitlines()]
        return "\n".join(lines) + "\n"
    return edit


def _alias_bomb(text: str) -> str:
    """'Billion laughs': nine levels of nine aliases, as the image list."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n" + text.split("images:")[0] + "images: *l9\n" + text.split("  - circle_5.png\n")[1]


TICKET_CASES = {
    "missing field": (lambda t: t.replace("requester: Example Rights Holder Ltd.\n", ""), "requester: required key is missing"),
    "unknown concept kind": (lambda t: t.replace("kind: object", "kind: vehicle"), "kind: Input should be"),
    "bad YAML": (lambda t: t.replace("kind: object", "kind: [object"), "ticket.yaml"),
    "path traversal": (lambda t: t.replace("  - circle_1.png", "  - ../circle_1.png"), "leaves the ticket's folder"),
    "absolute path": (lambda t: t.replace("  - circle_1.png", "  - /etc/passwd"), "must be relative"),
    "image missing": (lambda t: t.replace("  - circle_1.png", "  - circle_9.png"), "'circle_9.png' does not exist"),
    "image listed twice": (lambda t: t.replace("  - circle_2.png", "  - circle_1.png"), "listed twice"),
    "unknown key": (lambda t: t + "priority: high\n", "priority: unknown key"),
    "empty prompt": (lambda t: t.replace("  - a red square", "  - '  '"), "prompts must not be empty"),
    "bad ticket id": (lambda t: t.replace("ticket_id: TOY-0001", "ticket_id: ../../etc"), "ticket_id"),
    "date without time zone": (lambda t: t.replace("+00:00", ""), "created_at"),
    "empty image list": (lambda t: t.split("images:")[0] + "images: []\n" + t.split("  - circle_5.png\n")[1],
                         "images: List should have at least 1 item"),
    # issue 14: what got through, or crashed
    "not UTF-8": (lambda t: t.replace("Example Rights", "Exampl\xe9 Rights").encode("latin-1"),
                  "not UTF-8 text (byte 0xe9 at offset"),
    "NUL byte in an image path": (lambda t: t.replace("  - circle_1.png", '  - "circle_1\\0.png"'),
                                  "images: entry 0 'circle_1\\x00.png' contains a control character (U+0000)"),
    "line break in the concept": (_set("concept", '"circ\\nle"'),
                                  "concept: 'circ\\nle' contains a line break (U+000A) at position 4; it must be one "
                                  "line of printable text"),
    "escape sequence in the concept": (_set("concept", '"circle\\e[31m"'),
                                       "concept: 'circle\\x1b[31m' contains a control character (U+001B)"),
    "bidi override in the concept": (_set("concept", '"circle\\u202e"'),
                                     "concept: 'circle\\u202e' contains a bidirectional-text control (U+202E)"),
    "unpaired surrogate in the concept": (_set("concept", '"circle\\ud800"'),
                                          "concept: not valid Unicode text (it holds an unpaired surrogate"),
    "line break in an alias": (lambda t: t + 'aliases: ["ring\\n"]\n', "aliases: entry 0 'ring\\n' contains a line break"),
    "tab in a retain prompt": (lambda t: t.replace("  - a red square", '  - "a red\\tsquare"'),
                               "retain_prompts: entry 0 'a red\\tsquare' contains a control character (U+0009)"),
    "NUL in the requester": (_set("requester", '"Example\\0 Ltd."'),
                             "requester: 'Example\\x00 Ltd.' contains a control character (U+0000)"),
    "blank concept": (_set("concept", '"   "'), "concept: must not be blank"),
    "concept with padding": (_set("concept", '" circle"'), "concept: ' circle' starts or ends with white space"),
    "blank legal basis": (_set("legal_basis", '"  "'), "legal_basis: must not be blank"),
    "ticket_id given twice": (lambda t: t + "ticket_id: TOY-0002\n",
                              "ticket_id: given twice in the same mapping (lines 2 and 20); keep one"),
    "concept given twice": (lambda t: t.replace("kind: object", "concept: square\nkind: object"),
                            "concept: given twice in the same mapping (lines 3 and 4)"),
    "created_at in the future": (_set("created_at", '"2099-01-01T00:00:00+00:00"'),
                                 "h in the future (more than the 24 h allowed for clock skew); check the date"),
    "impossible date": (_set("created_at", "2026-13-45"), "not valid YAML: month must be in 1..12"),
    "the folder as an image": (lambda t: t.replace("  - circle_1.png", "  - ."),
                               "images[0]: '.' is a directory, not a file"),
    "empty image path": (lambda t: t.replace("  - circle_1.png", '  - ""'), "images: image paths must not be empty"),
    "concept is a number": (_set("concept", "42"), "concept: Input should be a valid string"),
    "top level is a list": (lambda t: "- a list\n- not a mapping\n", "top level must be a mapping of keys to values"),
    "nested too deeply": (lambda t: t + "deep: " + "[" * 50_000 + "]" * 50_000 + "\n", "not valid YAML: nested too deeply"),
    "ticket over 1 MiB": (lambda t: t + "# " + "x" * (1 << 20) + "\n",
                          "ticket.yaml: is more than 1048576 bytes; a ticket or config is a short text file"),
    "alias bomb": (_alias_bomb, "images[0]: Input should be a valid string"),
}


# --- the file system around the ticket ----------------------------------------------------------------

def _replace_first(make):
    """Put `make(path)` where circle_1.png was."""
    def setup(tmp_path: Path) -> Path:
        ticket = ticket_dir(tmp_path)
        first = ticket.parent / "circle_1.png"
        first.unlink()
        make(first)
        return ticket
    return setup


def _outside_link(tmp_path: Path) -> Path:
    ticket = ticket_dir(tmp_path)
    (tmp_path / "secret.png").write_bytes((EXAMPLE / "circle_1.png").read_bytes())
    (ticket.parent / "circle_1.png").unlink()
    (ticket.parent / "circle_1.png").symlink_to(tmp_path / "secret.png")
    return ticket


def _ticket_file_is(make):
    def setup(tmp_path: Path) -> Path:
        ticket = ticket_dir(tmp_path)
        ticket.unlink()
        make(ticket)
        return ticket
    return setup


def _json(edit=lambda text: text, encoding="utf-8"):
    """The example as a JSON ticket; `edit` changes its JSON text."""
    def setup(tmp_path: Path) -> Path:
        text = json.dumps(yaml.safe_load(GOOD_TICKET), indent=1)
        return ticket_dir(tmp_path, edit(text).encode(encoding), name="ticket.json")
    return setup


FILE_CASES = {
    "image is a FIFO": (_replace_first(os.mkfifo), "images[0]: 'circle_1.png' is not a regular file (FIFO, a named pipe)"),
    "image is a folder": (_replace_first(Path.mkdir), "images[0]: 'circle_1.png' is a directory, not a file"),
    "image is a symlink loop": (_replace_first(lambda p: p.symlink_to(p.name)),
                                "images[0]: 'circle_1.png' cannot be read (Too many levels of symbolic links)"),
    "image links out of the folder": (_outside_link, "images[0]: 'circle_1.png' resolves outside the ticket's folder"),
    "ticket is a FIFO": (_ticket_file_is(os.mkfifo), "ticket.yaml: is not a regular file (FIFO, a named pipe)"),
    "ticket is a folder": (_ticket_file_is(Path.mkdir), "ticket.yaml: is a directory, not a file"),
    "JSON key given twice": (_json(lambda t: t.replace('"kind": "object"', '"kind": "object", "kind": "logo"')),
                             "ticket.json: kind: given twice in the same mapping; keep one"),
    "JSON NUL in an image path": (_json(lambda t: t.replace('"circle_1.png"', '"circle_1\\u0000.png"')),
                                  "images: entry 0 'circle_1\\x00.png' contains a control character (U+0000)"),
    "JSON unpaired surrogate": (_json(lambda t: t.replace('"circle"', '"circle\\udc00"')),
                                "concept: not valid Unicode text (it holds an unpaired surrogate"),
    "JSON in UTF-16": (_json(encoding="utf-16"), "ticket.json: not UTF-8 text (byte 0xff at offset 0)"),
    "JSON with a trailing comma": (_json(lambda t: t.rstrip().rstrip("}") + ",}"),
                                   "not valid JSON: Expecting property name enclosed in double quotes"),
}


# --- images: the Great Expectations suite -------------------------------------------------------------

def _nudged(source: Path, target: Path) -> None:
    pixels = np.asarray(Image.open(source).convert("RGB")).copy()
    pixels[0, 0] = (pixels[0, 0].astype(int) + 3) % 256  # a different file, the same picture
    Image.fromarray(pixels).save(target)


def _noise(size: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _jpeg(image: Image.Image, target: Path, quality: int) -> None:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    target.write_bytes(buffer.getvalue())


def _animation(fmt: str):
    """The image itself and two other pictures as frames of one file."""
    def how(first: Path, folder: Path) -> None:
        frames = [Image.open(first).convert("RGB")] + [Image.open(folder / f"circle_{i}.png").convert("RGB").rotate(90)
                                                       for i in (4, 5)]
        frames[0].save(first, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                       **({"lossless": True} if fmt == "WEBP" else {}))
    return how


def _mostly_transparent(first: Path, folder: Path) -> None:
    image = Image.open(first).convert("RGBA")
    alpha = np.zeros((image.height, image.width), np.uint8)
    alpha[:4, :4] = 255  # 16 of 1024 pixels: 1.6%
    image.putalpha(Image.fromarray(alpha))
    image.save(first)


def _transparent_palette(first: Path, folder: Path) -> None:
    image = Image.new("P", (32, 32), 0)  # every pixel palette index 0, which the file declares transparent
    image.putpalette([200, 30, 30] * 256)
    image.save(first, transparency=0)


IMAGE_CASES = {
    "zero-byte file": (lambda f, d: f.write_bytes(b""), "circle_1.png", "does not decode as an image"),
    "truncated PNG": (lambda f, d: f.write_bytes(f.read_bytes()[:60]), "circle_1.png", "does not decode as an image"),
    "text renamed to an image": (lambda f, d: f.write_text("this is not an image\n"), "circle_1.png",
                                 "does not decode as an image"),
    "1x1 image": (lambda f, d: Image.new("RGB", (1, 1)).save(f), "circle_1.png", "1x1 is smaller than min_side 32 px"),
    "huge dimensions in the header": (lambda f, d: png_header_only(f, 5000, 5000), "circle_1.png",
                                      "5000x5000 pixels is more than max_pixels 16777216 (decompression-bomb guard)"),
    "format not allowed": (lambda f, d: Image.open(d / "circle_2.png").save(f, format="BMP"), "circle_1.png",
                           "format BMP is not allowed (allowed: PNG, JPEG, WEBP)"),
    "exact duplicate": (lambda f, d: shutil.copy(d / "circle_2.png", f), "circle_2.png",
                        "is an exact duplicate of another image"),
    "near duplicate": (lambda f, d: _nudged(d / "circle_2.png", f), "circle_2.png", "is a near duplicate of circle_1.png"),
    # issue 14: images with nothing to learn from
    "uniform colour": (lambda f, d: Image.new("RGB", (32, 32), (200, 30, 30)).save(f), "circle_1.png",
                       "is blank: its pixels vary by 0.00 (standard deviation, 0-255), less than min_pixel_std 2; "
                       "one uniform colour shows no concept"),
    "uniform colour as JPEG": (lambda f, d: _jpeg(Image.new("RGB", (64, 64), (40, 90, 200)), f, 90), "circle_1.png",
                               "is blank: its pixels vary by 0."),
    "fully transparent": (lambda f, d: Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(f), "circle_1.png",
                          "is (nearly) fully transparent: 0.0% of its pixels are visible, less than "
                          "min_visible_fraction 2%"),
    "mostly transparent": (_mostly_transparent, "circle_1.png",
                           "is (nearly) fully transparent: 1.6% of its pixels are visible"),
    "transparent palette image": (_transparent_palette, "circle_1.png", "is (nearly) fully transparent: 0.0%"),
    "pure noise": (lambda f, d: _noise(32).save(f), "circle_1.png",
                   "looks like pure noise: neighbouring pixels differ like independent random values (noise ratio "),
    "noise as JPEG": (lambda f, d: _jpeg(_noise(64), f, 75), "circle_1.png", "looks like pure noise"),
    "noise upscaled 2x": (lambda f, d: _noise(32).resize((64, 64), Image.NEAREST).save(f), "circle_1.png",
                          "looks like pure noise"),
    "uniform colour with sensor noise": (
        lambda f, d: Image.fromarray(np.clip(128 + np.random.default_rng(1).normal(0, 4, (48, 48, 3)), 0, 255)
                                     .astype(np.uint8)).save(f), "circle_1.png", "looks like pure noise"),
    "animated PNG": (_animation("PNG"), "circle_1.png",
                     "has 3 frames (an animation or multi-page file), more than max_frames 1; training would see the "
                     "first only"),
    "animated WebP": (_animation("WEBP"), "circle_1.png", "has 3 frames (an animation or multi-page file)"),
    "animated GIF": (_animation("GIF"), "circle_1.png", "has 3 frames"),
    "aspect ratio 500:1": (lambda f, d: Image.open(f).resize((16000, 32)).save(f), "circle_1.png",
                           "16000x32 has an aspect ratio of 500.0:1, more than max_aspect_ratio 4; training sees only "
                           "the centre square: crop the image to the concept"),
    "tall strip 1:10": (lambda f, d: Image.open(f).resize((32, 320)).save(f), "circle_1.png",
                        "32x320 has an aspect ratio of 10.0:1"),
}


def break_first(tmp_path: Path, how) -> tuple[Path, Path]:
    ticket = ticket_dir(tmp_path)
    first = ticket.parent / "circle_1.png"
    how(first, ticket.parent)
    return ticket, first


# --- the ticket against the run config ------------------------------------------------------------------

def _detector_file(folder: Path, body: str) -> Path:
    path = folder / "detector.py"
    path.write_text("def concept_present(images, concept_name, concept_kind):\n    return [False] * len(images)\n\n"
                    + body)
    return path


CONFIG_CASES = {  # name: (ticket edit, config changes (folder) -> dict, expected)
    "target model of another config": (
        _set("target_model", "stable-diffusion-v1-5"), lambda folder: {},
        "target_model: 'stable-diffusion-v1-5' is not the model of the run config"),
    "concept the toy detector cannot judge": (
        lambda t: _set("concept", "dog")(t).replace("a photo of a red circle", "a photo of a dog"), lambda folder: {},
        "concept: 'dog' cannot be judged by the detector of"),
    "concept that is a zero-shot alternative": (
        lambda t: t, lambda folder: {"evaluation__detector": {"kind": "clip_zero_shot",
                                                              "alternatives": ["a photo of a dog", "a red circle"]}},
        "the alternative 'a red circle' names it, so zero-shot CLIP could never tell the concept apart from it"),
    "custom detector says it cannot judge": (
        lambda t: t, lambda folder: {"evaluation__detector": {"kind": "custom", "path": str(_detector_file(
            folder, "def can_judge(concept_name, concept_kind):\n    return concept_name != 'circle'\n"))}},
        "its can_judge('circle', 'object') said no"),
    "custom detector's can_judge fails": (
        lambda t: t, lambda folder: {"evaluation__detector": {"kind": "custom", "path": str(_detector_file(
            folder, "def can_judge(concept_name, concept_kind):\n    raise KeyError(concept_name)\n"))}},
        "its can_judge('circle', 'object') raised KeyError('circle')"),
}


# --- every case, one way ----------------------------------------------------------------------------

ALL_CASES = sorted({*TICKET_CASES, *FILE_CASES, *IMAGE_CASES, *CONFIG_CASES})
assert len(ALL_CASES) == len(TICKET_CASES) + len(FILE_CASES) + len(IMAGE_CASES) + len(CONFIG_CASES)  # names unique


def build(case: str, tmp_path: Path) -> tuple[Path, Path, str]:
    """(ticket file, run config, the rule its refusal must state) for any case of the corpus."""
    if case in TICKET_CASES:
        edit, expected = TICKET_CASES[case]
        return ticket_dir(tmp_path, edit(GOOD_TICKET)), TOY_CONFIG, expected
    if case in FILE_CASES:
        setup, expected = FILE_CASES[case]
        return setup(tmp_path), TOY_CONFIG, expected
    if case in IMAGE_CASES:
        how, file, expected = IMAGE_CASES[case]
        return break_first(tmp_path, how)[0], TOY_CONFIG, f"image {file}: {expected}"  # as the message line says it
    edit, changes, expected = CONFIG_CASES[case]
    ticket, changes = ticket_dir(tmp_path, edit(GOOD_TICKET)), changes(tmp_path)
    return ticket, toy_config_file(tmp_path, "config", **changes) if changes else TOY_CONFIG, expected
