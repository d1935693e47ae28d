"""A corpus of bad tickets and image sets: each is stopped before training, naming the file and the rule.

Ticket-level mistakes are caught by the ticket schema (load_ticket); image-level ones by the Great
Expectations suite over the per-image facts (validate_images).
"""
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.file_errors import InputFileError
from components.image_facts import hamming, perceptual_hash
from components.image_validation import ImageValidationError, validate_images
from components.run_config import ImageValidation
from components.ticket import load_ticket

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tickets" / "erase-circle"
RULES = ImageValidation(min_side=32)
GOOD_TICKET = (EXAMPLE / "ticket.yaml").read_text()


def ticket_dir(tmp_path: Path, text: str = GOOD_TICKET) -> Path:
    folder = tmp_path / "ticket"
    folder.mkdir(parents=True)
    for png in EXAMPLE.glob("*.png"):
        shutil.copy(png, folder / png.name)
    (folder / "ticket.yaml").write_text(text)
    return folder / "ticket.yaml"


def validate(ticket: Path, rules: ImageValidation = RULES):
    loaded = load_ticket(ticket)
    return validate_images(loaded.image_paths, list(loaded.ticket.images), rules, ticket)


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height but holds almost no data (a decompression-bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


# --- ticket-level: the schema ------------------------------------------------------------------------

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
}


@pytest.mark.parametrize("case", sorted(TICKET_CASES))
def test_a_bad_ticket_is_refused_naming_file_field_and_rule(case, tmp_path):
    edit, expected = TICKET_CASES[case]
    ticket = ticket_dir(tmp_path, edit(GOOD_TICKET))
    with pytest.raises(InputFileError) as err:
        load_ticket(ticket)
    assert str(ticket) in str(err.value) and expected in str(err.value)


def test_a_symlink_out_of_the_ticket_folder_is_refused(tmp_path):
    ticket = ticket_dir(tmp_path)
    outside = tmp_path / "secret.png"
    shutil.copy(EXAMPLE / "circle_1.png", outside)
    (ticket.parent / "circle_1.png").unlink()
    (ticket.parent / "circle_1.png").symlink_to(outside)
    with pytest.raises(InputFileError, match="resolves outside the ticket's folder"):
        load_ticket(ticket)


# --- image-level: the Great Expectations suite ---------------------------------------------------------

def break_first(tmp_path: Path, how) -> tuple[Path, Path]:
    ticket = ticket_dir(tmp_path)
    first = ticket.parent / "circle_1.png"
    how(first, ticket.parent)
    return ticket, first


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
                        "exact duplicate of another image"),
    "near duplicate": (lambda f, d: _nudged(d / "circle_2.png", f), "circle_2.png", "near duplicate of circle_1.png"),
}


def _nudged(source: Path, target: Path) -> None:
    pixels = np.asarray(Image.open(source).convert("RGB")).copy()
    pixels[0, 0] = (pixels[0, 0].astype(int) + 3) % 256  # a different file, the same picture
    Image.fromarray(pixels).save(target)


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_a_bad_image_fails_validation_naming_the_file_and_rule(case, tmp_path):
    how, file, expected = IMAGE_CASES[case]
    ticket, _ = break_first(tmp_path, how)
    report = validate(ticket)
    assert not report.success
    assert any(f == file and expected in rule for f, rule in report.problems), report.problems
    assert all(f in {p.name for p in ticket.parent.iterdir()} for f, _ in report.problems)  # only real files named


def test_too_few_and_too_large_images_are_refused(tmp_path):
    text = GOOD_TICKET.replace("  - circle_4.png\n  - circle_5.png\n", "")
    report = validate(ticket_dir(tmp_path, text))
    assert not report.success
    ticket = str(tmp_path / "ticket" / "ticket.yaml")
    assert report.problems == [(ticket, f"{ticket}: the ticket lists 3 images; between 4 and 50 are required")]
    assert str(ImageValidationError(report)) == f"{ticket}: the ticket lists 3 images; between 4 and 50 are required"
    report = validate(ticket_dir(tmp_path / "b"), RULES.model_copy(update={"max_bytes": 100}))
    assert sorted(f for f, _ in report.problems) == [f"circle_{i}.png" for i in range(1, 6)]
    assert "bytes is more than max_bytes 100" in report.problems[0][1]


def test_the_example_ticket_passes_and_the_result_keeps_gx_s_own_record(tmp_path):
    report = validate(EXAMPLE / "ticket.yaml")
    assert report.success and report.problems == []
    assert [f.path for f in report.facts] == [f"circle_{i}.png" for i in range(1, 6)]
    assert all(f.decodable and f.format == "PNG" and f.width == f.height == 32 for f in report.facts)
    assert report.gx_result["success"] is True and len(report.gx_result["results"]) == 13
    saved = report.write(tmp_path / "validation.json")
    assert '"sha256"' in saved.read_text()


def test_a_failing_image_set_raises_one_line_per_file_and_rule(tmp_path):
    ticket, _ = break_first(tmp_path, lambda f, d: f.write_bytes(b""))
    error = ImageValidationError(validate(ticket))
    assert str(error).splitlines() == [f"{ticket}: image circle_1.png: does not decode as an image (cannot identify "
                                       f"image file '{ticket.parent / 'circle_1.png'}')"]


def test_perceptual_hash_ignores_tiny_edits_and_separates_different_pictures():
    a = Image.open(EXAMPLE / "circle_1.png")
    pixels = np.asarray(a.convert("RGB")).copy()
    pixels[5, 5] = (pixels[5, 5].astype(int) + 3) % 256
    assert hamming(perceptual_hash(a), perceptual_hash(Image.fromarray(pixels))) <= 2
    assert hamming(perceptual_hash(a), perceptual_hash(Image.open(EXAMPLE / "circle_3.png"))) > RULES.near_duplicate_bits
