"""Method A's concept negation: the name prompts' anchored target is also pushed away from the concept as the concept's bare
prompt differs from the empty prompt, a direction that does not depend on the anchor (the anchor "a blue" is itself
drawn as a triangle by the toy model, so anchoring alone pushes little there)."""
import torch

from components.erasure.denoising import encode, image_latents, noised, predict, tokenize, training_scheduler
from components.erasure.lora_ti import _targets


def test_targets_subtract_the_concept_direction_measured_against_the_empty_prompt(toy_world, circle_images):
    model, _ = toy_world
    pipe = model.pipeline
    unet, encoder = pipe.unet, pipe.text_encoder
    prompts = ["a red square", "a blue", "a blue triangle", "a triangle", ""]
    with torch.no_grad():
        states = encode(encoder, tokenize(pipe.tokenizer, prompts, "cpu"))
        noisy, t, _ = noised(training_scheduler(pipe), image_latents(pipe, circle_images), torch.Generator().manual_seed(3))
        retain, anchor, prompt, concept, empty = (states[i:i + 1].repeat(noisy.shape[0], 1, 1) for i in range(5))

        def e(s):
            return predict(unet, noisy, t, s)

        pairs = [(anchor, prompt), (empty, concept)]  # the name prompts' pair first, then e.g. the token's
        plain = _targets(unet, noisy, t, retain, 1.0, pairs)
        negated = _targets(unet, noisy, t, retain, 1.0, pairs, states[3:5], 2.0)
        unused = _targets(unet, noisy, t, retain, 1.0, pairs, states[3:5], 0.0)
        expected = e(anchor) - 1.0 * (e(prompt) - e(anchor)) - 2.0 * (e(concept) - e(empty))
    assert torch.allclose(plain[0], e(retain), atol=1e-5) and torch.allclose(negated[0], plain[0], atol=1e-5)
    assert torch.allclose(plain[1], e(anchor) - (e(prompt) - e(anchor)), atol=1e-5)
    assert torch.allclose(negated[1], expected, atol=1e-5)
    assert torch.allclose(negated[2], plain[2], atol=1e-5)  # only the name prompts' target is negated
    assert torch.allclose(unused[1], plain[1], atol=1e-5)
    assert not torch.allclose(negated[1], plain[1], atol=1e-3)  # the concept direction is not nothing
