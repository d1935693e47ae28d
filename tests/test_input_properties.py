"""Property-based: whatever arrives as a ticket file or an image, the only outcomes are a loaded ticket
or a refusal as bad input (exit code 2) — never another exception, never a hang.

Ticket files: arbitrary bytes, arbitrary YAML/JSON structures, and the example ticket with arbitrary
values in its fields. Images: arbitrary bytes, bytes behind an image format's magic number, and the
example's PNG with bytes flipped, through the image facts and the Great Expectations suite. Each case
runs under a hard time limit (a hang fails the test instead of stalling it) and Hypothesis' deadline.
"""
from __future__ import annotations

import json
import shutil
import signal
import string
import struct
import zlib
from contextlib import contextmanager
from datetime import timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from components.domain.file_errors import InputFileError
from components.validation.image_facts import ImageFacts, read_facts
from components.validation.image_validation import ImageValidationError, validate_images
from components.config.run_config import ImageValidation
from components.domain.ticket import LoadedTicket, load_ticket
from tests.bad_inputs import EXAMPLE, GOOD_TICKET, TOY_CONFIG

RULES = ImageValidation(min_side=32)
GOOD = yaml.safe_load(GOOD_TICKET)
QUICK = settings(max_examples=120, deadline=timedelta(seconds=3), database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Hung(BaseException):
    """Not an Exception: no `except Exception` in the code under test can swallow it."""


@contextmanager
def time_limit(seconds: float):
    def hung(signum, frame):
        raise Hung(f"took more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A ticket folder with the example's images, shared by the examples of a test (each rewrites its files)."""
    out = tmp_path_factory.mktemp("ticket")
    for png in EXAMPLE.glob("*.png"):
        shutil.copy(png, out / png.name)
    return out


def load_or_refuse(path: Path) -> LoadedTicket | InputFileError:
    with time_limit(10):
        try:
            outcome = load_ticket(path)
        except InputFileError as err:
            outcome = err
    event(type(outcome).__name__)  # --hypothesis-show-statistics: how many got how far
    return outcome


def assert_refusal_names_the_file(err: InputFileError, path: Path) -> None:
    lines = str(err).splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), lines  # one line per problem


# --- ticket files -----------------------------------------------------------------------------------------

@QUICK
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_any_bytes_as_a_ticket_file_load_or_are_refused(folder, data, suffix):
    path = folder / f"ticket{suffix}"
    path.write_bytes(data)
    outcome = load_or_refuse(path)
    if isinstance(outcome, InputFileError):
        assert_refusal_names_the_file(outcome, path)


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=40) | st.datetimes(timezones=st.just(timezone.utc)))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                          max_size=4), max_leaves=12)
path_text = st.text(alphabet=string.printable + "\u00e9", max_size=300)
paths = path_text | st.sampled_from(["circle_1.png", ".", "", "..", "../circle_1.png", "/etc/passwd", "circle_1.png/",
                                     "x" * 300, "a\0b.png", "sub/" * 40 + "x.png"]) | st.builds(
    lambda a, char, b: a + char + b, path_text, st.sampled_from(["\0", "\n", "\x1b", "\u202e", "\u2028"]), path_text)


@st.composite
def ticket_like(draw) -> dict:
    """The example ticket with up to three changes: a field dropped, a field given an arbitrary value, a text
    field given arbitrary text, or one image entry made an arbitrary path. Gets past the parser into the
    schema's validators and, often, to the files the ticket names."""
    ticket = {**GOOD, "images": list(GOOD["images"])}
    for _ in range(draw(st.integers(1, 3))):
        change = draw(st.sampled_from(["drop", "value", "text", "image", "image", "image"]))
        key = draw(st.sampled_from([*GOOD, "aliases", "neighbours", "paraphrases", "extra"]))
        if change == "drop":
            ticket.pop(key, None)
        elif change == "value":
            ticket[key] = draw(values)
        elif change == "text":
            ticket[key] = draw(st.text(max_size=40))
        elif isinstance(ticket.get("images"), list) and ticket["images"]:
            ticket["images"][draw(st.integers(0, len(ticket["images"]) - 1))] = draw(paths)
    return ticket


def _dump(data, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(data, default=str)
    return yaml.safe_dump(data, allow_unicode=True)


@settings(QUICK, max_examples=250)
@given(data=values | ticket_like(), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_yaml_or_json_structure_loads_or_is_refused(folder, data, suffix):
    path = folder / f"structured{suffix}"
    path.write_text(_dump(data, suffix), encoding="utf-8", errors="surrogatepass")
    outcome = load_or_refuse(path)
    if isinstance(outcome, InputFileError):
        assert_refusal_names_the_file(outcome, path)
    else:
        assert all(p.is_file() and p.is_relative_to(folder.resolve()) for p in outcome.image_paths)


@settings(QUICK, max_examples=40)
@given(data=st.binary(max_size=512) | ticket_like().map(lambda d: _dump(d, ".yaml").encode("utf-8", "surrogatepass")))
def test_lethe_check_ticket_exits_0_or_2_on_any_ticket_file(folder, data, monkeypatch):
    from pipelines.cli import app

    path = folder / "cli.yaml"
    path.write_bytes(data)
    with time_limit(30):
        result = CliRunner().invoke(app, ["check", "ticket", str(path), "--config", str(TOY_CONFIG)])
    assert result.exit_code in (0, 2), result.output
    assert result.exit_code == 0 or f"{path}: " in result.output


# --- images -----------------------------------------------------------------------------------------------

GOOD_PNG = (EXAMPLE / "circle_1.png").read_bytes()
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x01\x00\x00WEBPVP8 ", b"BM", b"II*\x00", b"MM\x00*"]


def _fix_png_crcs(data: bytearray) -> bytes:
    """Recompute every complete chunk's CRC, so a change reaches the decoder instead of failing the checksum."""
    offset = 8
    while offset + 12 <= len(data):
        length = struct.unpack(">I", data[offset:offset + 4])[0]
        end = offset + 8 + length
        if end + 4 > len(data):
            break
        data[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(data[offset + 4:end])))
        offset = end + 4
    return bytes(data)


@st.composite
def flipped_png(draw) -> bytes:
    """The example's PNG with a few bytes changed (checksums fixed or not), cut short, or with a tail."""
    data = bytearray(GOOD_PNG)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    data = bytearray(_fix_png_crcs(data)) if draw(st.booleans()) else data
    cut = draw(st.integers(8, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]


@st.composite
def any_picture(draw) -> bytes:
    """A well-formed file of any mode, size and content, in a format that can hold it: reaches the content facts."""
    import io

    from PIL import Image

    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    if draw(st.integers(0, 9)) == 0:
        width = draw(st.integers(1, 3000))  # a strip
    needed = len(Image.new(mode, (width, height)).tobytes())
    raw = draw(st.binary(min_size=1, max_size=256))  # repeated to fill the picture: stripes, noise, uniform
    image = Image.frombytes(mode, (width, height), (raw * (needed // len(raw) + 1))[:needed])
    fmt = draw(st.sampled_from(["PNG", "GIF", "WEBP", "JPEG", "TIFF", "BMP"]))
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):  # this format cannot hold this mode: save as PNG
        buffer = io.BytesIO()
        image.convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


image_bytes = (st.binary(max_size=4096) | st.tuples(st.sampled_from(MAGIC), st.binary(max_size=2048)).map(
    lambda parts: parts[0] + parts[1]) | flipped_png() | any_picture())


@settings(QUICK, max_examples=200)
@given(data=image_bytes)
def test_any_bytes_as_an_image_give_facts_never_an_exception(folder, data):
    path = folder / "any.png"
    path.write_bytes(data)
    with time_limit(10):
        facts, phash = read_facts(path, "any.png", RULES.max_pixels, RULES.max_bytes)
    assert isinstance(facts, ImageFacts) and facts.bytes == len(data)
    event(f"decodable: {facts.decodable}")
    if facts.decodable:
        assert facts.width and facts.height and facts.frames >= 1 and phash is not None
        assert 0 <= facts.visible_fraction <= 1 and facts.pixel_std >= 0
    else:
        assert facts.error and phash is None


@settings(QUICK, max_examples=30, deadline=timedelta(seconds=20))
@given(data=image_bytes)
def test_any_bytes_as_an_image_pass_or_fail_the_suite_naming_the_file(folder, data):
    path = folder / "circle_1.png"
    path.write_bytes(data)
    listed = [f"circle_{i}.png" for i in range(1, 6)]
    with time_limit(60):
        report = validate_images([folder / name for name in listed], listed, RULES, folder / "ticket.yaml")
    if not report.success:
        assert report.problems and {file for file, _ in report.problems} <= set(listed)
        assert str(ImageValidationError(report))  # the one-line-per-problem message builds
