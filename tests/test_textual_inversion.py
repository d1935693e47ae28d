"""Textual inversion on the toy world: the learned token draws the concept; the file is diffusers'."""
import numpy as np
import torch
from safetensors.torch import load_file

from components.erasure.request import Concept
from components.erasure.textual_inversion import EMBEDDINGS_FILE, LearnedToken, learn_token


def circle_rate(pipe, detector, prompt: str, n: int = 16) -> float:
    images = pipe([prompt] * n, num_inference_steps=25, guidance_scale=5.0, output_type="np",
                  generator=torch.Generator().manual_seed(11)).images
    return float(np.mean([d.shape == "circle" for d in detector.detect((images * 255).round().astype(np.uint8))]))


def test_learned_token_draws_the_concept_on_the_original_model(circle_token, toy_world, fresh_toy_pipeline, tmp_path):
    _, detector = toy_world
    folder = circle_token.save(tmp_path / "token")
    pipe = fresh_toy_pipeline()
    before = circle_rate(pipe, detector, "a shape")  # the init word: any shape
    pipe.load_textual_inversion(str(folder / EMBEDDINGS_FILE))  # diffusers' own loader
    after = circle_rate(pipe, detector, f"a {circle_token.token}")
    assert after >= 0.8 and after >= before + 0.3, (before, after)


def test_only_the_new_row_trains_and_the_pipeline_is_untouched(toy_world, toy_config, circle_images):
    model, _ = toy_world
    pipe = model.pipeline
    table = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    vocab = len(pipe.tokenizer)
    params = toy_config.erasure.textual_inversion.model_copy(update={"steps": 5})
    token = learn_token(pipe, Concept("circle"), circle_images, params, seed=3)
    assert len(pipe.tokenizer) == vocab and torch.equal(pipe.text_encoder.get_input_embeddings().weight, table)
    init = table[pipe.tokenizer("shape", add_special_tokens=False).input_ids].mean(0)
    assert token.embedding.shape == (1, table.shape[1]) and not torch.equal(token.embedding[0], init)


def test_same_seed_same_token_and_save_load_round_trip(toy_world, toy_config, circle_images, tmp_path):
    model, _ = toy_world
    params = toy_config.erasure.textual_inversion.model_copy(update={"steps": 8})
    a = learn_token(model.pipeline, Concept("circle"), circle_images, params, seed=5)
    b = learn_token(model.pipeline, Concept("circle"), circle_images, params, seed=5)
    c = learn_token(model.pipeline, Concept("circle"), circle_images, params, seed=6)
    assert torch.equal(a.embedding, b.embedding) and not torch.equal(a.embedding, c.embedding)
    loaded = LearnedToken.load(a.save(tmp_path / "t"))
    assert torch.equal(loaded.embedding, a.embedding) and loaded.token == a.token
    assert set(load_file(tmp_path / "t" / EMBEDDINGS_FILE)) == {a.token}
