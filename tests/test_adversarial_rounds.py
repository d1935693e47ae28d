"""Method A's adversarial rounds: the attackers are real TI attackers (their loss on the ticket's images falls),
they restart where a fresh attack starts, and nothing of them leaves the training: the adapter holds the same
tensors as without them and the pipeline's tokenizer and embedding table are unchanged."""
import torch

from components.erasure.denoising import encode, image_latents, noised, per_sample_mse, predict, tokenize, training_scheduler
from components.erasure.lora_ti import _Adversary
from components.erasure.methods import erase
from components.erasure.request import Concept, ErasureRequest
from components.domain.prompt_templates import fill
from components.erasure.textual_inversion import text_encoder_with_token


def _attackers(model, toy_config, circle_token, **changes):
    params = toy_config.erasure.lora_ti.adversary.model_copy(update={"tokens": 2, **changes})
    tokenizer, encoder, _ = text_encoder_with_token(model.pipeline, circle_token.token, circle_token.embedding)
    adversary = _Adversary(tokenizer, encoder, params, toy_config.erasure.textual_inversion, circle_token.embedding)
    ids = [tokenize(tokenizer, fill(["a {}", "a photo of a {}"], w), "cpu") for w in adversary.words]
    return adversary, encoder, ids


def test_attackers_learn_to_draw_the_images_and_restart_from_their_starts(toy_world, toy_config, circle_token,
                                                                          circle_images):
    model, _ = toy_world
    adversary, encoder, ids = _attackers(model, toy_config, circle_token, learning_rate=0.02, reset_every=40)
    table = encoder.get_input_embeddings().weight
    others = table.detach().clone()
    # the second attacker starts at the learned concept token, the first at TI's init word
    assert torch.equal(table[adversary.ids[1]], circle_token.embedding.reshape(-1))
    latents, scheduler = image_latents(model.pipeline, circle_images), training_scheduler(model.pipeline)
    # TI's loss of the first attacker (from the init word) on fixed noise: it must fall as the attacker trains
    noisy, t, target = noised(scheduler, latents.repeat(4, 1, 1, 1), torch.Generator().manual_seed(1), adversary.timesteps)

    @torch.no_grad()
    def first_attacker_loss() -> float:
        states = encode(encoder, ids[0][torch.arange(noisy.shape[0]) % ids[0].shape[0]])
        return per_sample_mse(predict(model.pipeline.unet, noisy, t, states), target).mean().item()

    start = first_attacker_loss()
    gen = torch.Generator().manual_seed(0)
    for step in range(40):
        adversary.attack(model.pipeline.unet, scheduler, latents, ids, step, gen)
    assert first_attacker_loss() < 0.9 * start  # they attack: TI's loss falls
    moved = table.detach()
    assert not torch.allclose(moved[adversary.ids], adversary.starts)
    keep = torch.ones(table.shape[0], dtype=torch.bool)
    keep[adversary.ids] = False
    assert torch.equal(moved[keep], others[keep])  # only the attackers' own rows move
    adversary.attack(model.pipeline.unet, scheduler, latents, ids, 40, gen)  # step 40: restart, then one step
    assert torch.allclose(table[adversary.ids], adversary.starts, atol=0.05)


def test_adversarial_rounds_add_nothing_to_the_adapter_or_the_pipeline(toy_world, toy_config, circle_images,
                                                                      circle_token):
    model, _ = toy_world
    vocabulary = len(model.pipeline.tokenizer)
    rows = model.pipeline.text_encoder.get_input_embeddings().weight.detach().clone()
    results = {}
    for tokens in (0, 2):
        block = toy_config.erasure.lora_ti.model_copy(update={
            "steps": 3, "adversary": toy_config.erasure.lora_ti.adversary.model_copy(update={"tokens": tokens})})
        config = toy_config.erasure.model_copy(update={"method": "lora_ti", "lora_ti": block})
        request = ErasureRequest([Concept("circle")], images=circle_images, retain_prompts=["a red square"],
                                 learned_token=circle_token)
        results[tokens] = erase(model.pipeline, request, config)
    assert results[2].changed_tensors() == results[0].changed_tensors()
    assert all("attacker_denoise" in h for h in results[2].history)
    assert not any("attacker_denoise" in h for h in results[0].history)
    assert len(model.pipeline.tokenizer) == vocabulary
    assert torch.equal(model.pipeline.text_encoder.get_input_embeddings().weight, rows)
