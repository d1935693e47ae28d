"""Method A's forget term on the original model's own drawings of each forget prompt (lora_ti.forget_latents):
the latents are drawings of that prompt (the detector agrees), reproducible, never the evaluation's images, and
training on them changes the same tensors as training on the ticket's images."""
import numpy as np
import torch

from components.config.run_config import DrawnLatents
from components.erasure.lora_ti import drawn_latents
from components.erasure.methods import erase
from components.erasure.request import Concept, ErasureRequest
from components.evaluation.generation import generate

PROMPTS = ["a red circle", "a blue square"]


def _decoded(pipe, latents: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        pixels = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    return ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_drawn_latents_are_the_models_drawings_of_each_prompt_with_their_own_seeds(toy_world, toy_config):
    model, detector = toy_world
    params = DrawnLatents(per_prompt=4, steps=toy_config.sampling.steps, guidance_scale=toy_config.sampling.guidance_scale)
    latents = drawn_latents(model.pipeline, PROMPTS, params, seed=0)
    assert latents.shape == (2, 4, 4, 16, 16)
    assert torch.equal(latents, drawn_latents(model.pipeline, PROMPTS, params, seed=0))  # reproducible
    for prompt, drawn in zip(PROMPTS, latents):
        colour, shape = prompt.split()[1:]
        found = detector.detect(_decoded(model.pipeline, drawn))
        assert sum(d.shape == shape and d.colour == colour for d in found) >= 3, (prompt, found)
    # the evaluation draws the same prompt from other noise: training never sees the gate's images
    evaluated = generate(model.pipeline, PROMPTS[:1], 4, toy_config.sampling, seed=0)[PROMPTS[0]]
    decoded = _decoded(model.pipeline, latents[0])
    assert all(not np.array_equal(decoded[i], evaluated[i]) for i in range(4))


def test_training_on_drawn_latents_changes_the_same_tensors(toy_world, toy_config, circle_images, circle_token):
    model, _ = toy_world
    results = {}
    for drawn in (None, DrawnLatents(per_prompt=1, steps=5)):
        block = toy_config.erasure.lora_ti.model_copy(update={"steps": 2, "forget_latents": drawn})
        config = toy_config.erasure.model_copy(update={"method": "lora_ti", "lora_ti": block})
        request = ErasureRequest([Concept("circle")], images=circle_images, retain_prompts=["a red square"],
                                 learned_token=circle_token)
        results[drawn is None] = erase(model.pipeline, request, config)
    assert results[False].changed_tensors() == results[True].changed_tensors()
    losses = [[h["name_denoise"] for h in results[k].history] for k in (False, True)]
    assert losses[0] != losses[1]  # the name prompts were trained on other latents
