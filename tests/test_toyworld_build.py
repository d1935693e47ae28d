"""The build command itself: it runs end to end, is deterministic, and resumes exactly."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from components.toyworld.build import BuildPlan, build_world
from components.toyworld.shapes import COLOUR_NAMES, IMAGE_SIZE, SHAPES, all_captions, render_shape, sample_shapes
from components.toyworld.tokenizer import WORDS, build_tokenizer

TINY = BuildPlan().scaled(0.002)


def test_every_world_word_is_one_token():
    tok = build_tokenizer()
    for word in WORDS:
        ids = tok(word).input_ids
        assert len(ids) == 3, (word, tok.convert_ids_to_tokens(ids))  # start, word, end
    # Unknown text still tokenizes (needed for textual-inversion placeholders).
    assert len(tok("a <concept> zebra").input_ids) > 3


def test_rendering_is_seeded_and_labelled():
    a = sample_shapes(8, np.random.default_rng(1))
    b = sample_shapes(8, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (8, IMAGE_SIZE, IMAGE_SIZE, 3) and a[0].dtype == np.uint8
    assert set(a[1]) <= set(SHAPES) and set(a[2]) <= set(COLOUR_NAMES)
    assert len(all_captions()) == len(SHAPES) * len(COLOUR_NAMES) == 16


def test_shape_colour_is_the_drawn_colour():
    image = render_shape("square", "blue", np.random.default_rng(0)).astype(float)
    brightest = image.reshape(-1, 3)[image.reshape(-1, 3).sum(1).argmax()]
    assert brightest.argmax() == 2  # the blue channel dominates the shape's pixels


@pytest.fixture(scope="module")
def tiny_worlds(tmp_path_factory):
    """Two scaled-down builds from the same seed: one through the function, one through `lethe world build`."""
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    root = tmp_path_factory.mktemp("worlds")
    first = build_world(root / "a", root / "a-work", TINY, log=lambda _: None)
    result = CliRunner().invoke(app, ["world", "build", "--scale", "0.002", "--out", str(root / "b"),
                                      "--work-dir", str(root / "b-work")])
    assert result.exit_code == 0, result.output
    assert "[vae] training" in result.output  # stage names print as text, not as markup
    second = json.loads((root / "b" / "world.json").read_text())
    return root, first, second


@pytest.mark.slow
def test_build_writes_a_loadable_world(tiny_worlds):
    from components.models.loading import load_pipeline
    from components.toyworld.detector import ConceptDetector

    root, manifest, _ = tiny_worlds
    model = load_pipeline(root / "a" / "sd")
    assert model.pipeline.unet.config.sample_size == 16
    ConceptDetector.from_pretrained(root / "a" / "detector")
    assert (root / "a" / "clip" / "processor_config.json").is_file()
    assert set(manifest["fidelity"]["per_caption"]) == set(all_captions())
    assert set(manifest["training_seconds"]) >= {"detector", "clip", "vae", "latents"}


@pytest.mark.slow
def test_build_is_deterministic(tiny_worlds):
    root, first, second = tiny_worlds
    for rel in ("sd/unet/diffusion_pytorch_model.safetensors", "sd/text_encoder/model.safetensors",
                "sd/vae/diffusion_pytorch_model.safetensors", "detector/model.safetensors", "clip/model.safetensors"):
        a, b = load_file(str(root / "a" / rel)), load_file(str(root / "b" / rel))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (rel, key)
    assert first["fidelity"] == second["fidelity"]


def test_denoiser_resume_equals_an_uninterrupted_run(tmp_path):
    from components.toyworld.train_diffusion import train_denoiser

    tok = build_tokenizer()
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(16, 4, 16, 16, generator=gen)
    shapes, colours = ["circle"] * 16, ["red"] * 16
    quiet = dict(log=lambda _: None, batch_size=4)
    straight, _ = train_denoiser(tok, latents, shapes, colours, steps=4, state_path=tmp_path / "a.pt", **quiet)
    train_denoiser(tok, latents, shapes, colours, steps=2, state_path=tmp_path / "b.pt", **quiet)
    resumed, _ = train_denoiser(tok, latents, shapes, colours, steps=4, state_path=tmp_path / "b.pt", **quiet)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
