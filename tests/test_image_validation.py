"""A corpus of bad tickets and image sets: each is stopped before training, naming the file and the rule.

Ticket-level mistakes are caught by the ticket file's reader and schema (load_ticket); image-level ones
by the Great Expectations suite over the per-image facts (validate_images); a ticket that does not fit
its run config by components/takedown/admission.py. The corpus itself is tests/bad_inputs.py; tests/test_bad_inputs.py
takes every case through every door.
"""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.domain.file_errors import InputFileError
from components.validation.image_facts import hamming, perceptual_hash
from components.validation.image_validation import ImageValidationError, validate_images
from components.config.run_config import ImageValidation
from components.domain.ticket import load_ticket
from tests.bad_inputs import (CONFIG_CASES, EXAMPLE, FILE_CASES, GOOD_TICKET, IMAGE_CASES, TICKET_CASES, break_first,
                              build, ticket_dir)

RULES = ImageValidation(min_side=32)


def validate(ticket: Path, rules: ImageValidation = RULES):
    loaded = load_ticket(ticket)
    return validate_images(loaded.image_paths, list(loaded.ticket.images), rules, ticket)


# --- ticket-level: the schema ------------------------------------------------------------------------

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


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_a_bad_ticket_file_or_image_file_is_refused_without_opening_it(case, tmp_path):
    setup, expected = FILE_CASES[case]
    ticket = setup(tmp_path)
    with pytest.raises(InputFileError) as err:
        load_ticket(ticket)  # a FIFO would block this call if it were opened
    assert str(ticket) in str(err.value) and expected in str(err.value)


# --- the ticket against its run config ---------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_a_ticket_that_does_not_fit_its_config_is_refused(case, tmp_path):
    from components.takedown.admission import check_ticket_meets_config
    from components.config.run_config import load_run_config

    ticket, config, expected = build(case, tmp_path)
    loaded = load_ticket(ticket)  # a valid ticket, on its own
    with pytest.raises(InputFileError) as err:
        check_ticket_meets_config(loaded, load_run_config(config), config, ticket)
    assert str(err.value).startswith(f"{ticket}: ") and expected in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_a_ticket_may_name_its_model_by_registry_name_hub_id_or_folder(tmp_path):
    from components.takedown.admission import model_names
    from components.config.run_config import BaseModelSource

    hub = BaseModelSource(hub_id="org/model", revision="0" * 40, registry_name="lethe-model")
    local = BaseModelSource(path=tmp_path / "stable-diffusion-v1-5", registry_name="lethe-sd15")
    assert model_names(hub) == ["lethe-model", "org/model"]
    assert model_names(local) == ["lethe-sd15", "stable-diffusion-v1-5"]


# --- image-level: the Great Expectations suite ---------------------------------------------------------

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


def photo_like(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Not the toy renderer's kind of picture: a colour gradient, a few blurred shapes, sensor noise, JPEG."""
    import io

    from PIL import ImageDraw, ImageFilter

    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = Image.fromarray(np.clip(start + (end - start) * (np.cos(angle) * xx + np.sin(angle) * yy)[..., None], 0, 255)
                            .astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 8)):
        x, y, size = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.4) * max(width, height)
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        [draw.ellipse, draw.rectangle][int(rng.integers(2))]([x, y, x + size, y + size * rng.uniform(0.5, 1.5)], fill=colour)
    noisy = np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2))), float)
    noisy = noisy + rng.normal(0, rng.uniform(1, 6), noisy.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=int(rng.integers(60, 92)))
    return Image.open(buffer)


def test_the_content_rules_pass_good_images_that_lethe_did_not_draw_with_margin(tmp_path):
    """Thresholds are not tuned to the toy renderer: its shapes, photo-like pictures and real photos and logos
    (shipped with scikit-learn and matplotlib) pass with at least 2x margin on the noise ratio and 5x on the
    pixel spread (the measured margins are in run_config.ImageValidation)."""
    import matplotlib
    import sklearn.datasets

    from components.validation.image_facts import content_facts
    from components.toyworld.shapes import COLOUR_NAMES, SHAPES, render_shape

    rng = np.random.default_rng(7)
    images = [Image.open(p) for p in sorted(EXAMPLE.glob("*.png"))]
    images += [Image.fromarray(render_shape(SHAPES[i % 4], COLOUR_NAMES[i // 4 % 4], rng)) for i in range(64)]
    images += [photo_like(rng, *size) for size in [(256, 256), (640, 480), (512, 288), (33, 33), (64, 48)] * 4]
    photos = [Path(sklearn.datasets.__file__).parent / "images" / n for n in ("china.jpg", "flower.jpg")]
    photos += [Path(matplotlib.get_data_path()) / "sample_data" / n for n in ("grace_hopper.jpg", "logo2.png",
                                                                             "Minduka_Present_Blue_Pack.png")]
    for photo in photos:
        for side in (None, 256, 64, 32):
            image = Image.open(photo)
            if side:
                image.thumbnail((side, side))
            images.append(image)
    facts = [content_facts(image) for image in images]
    assert max(f["noise_ratio"] or 0 for f in facts) < RULES.max_noise_ratio / 2  # None: too small to tell
    assert min(f["pixel_std"] for f in facts) > RULES.min_pixel_std * 5
    assert min(f["visible_fraction"] for f in facts) > RULES.min_visible_fraction * 5  # the logos' transparent backgrounds
    assert all(f["frames"] == 1 for f in facts)


def test_a_wide_logo_is_refused_for_its_aspect_ratio_only(tmp_path):
    """matplotlib's wordmark (542x130, transparent background) passes every content rule but the aspect ratio:
    training would see its centre square only."""
    import matplotlib

    ticket, first = break_first(tmp_path, lambda f, d: shutil.copy(
        Path(matplotlib.get_data_path()) / "sample_data" / "logo2.png", f))
    assert validate(ticket).problems == [("circle_1.png", "542x130 has an aspect ratio of 4.2:1, more than "
                                          "max_aspect_ratio 4; training sees only the centre square: crop the image "
                                          "to the concept")]
