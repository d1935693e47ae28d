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

        first = torch.zeros(noisy.shape[0], dtype=torch.long)
        # the name prompts' pair first
        pairs = [(states[1:2], first, states[2:3], first), (states[4:5], first, states[3:4], first)]
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


def test_targets_predict_a_bank_row_that_several_pairs_pick_for_an_image_once(toy_world, circle_images):
    model, _ = toy_world
    pipe = model.pipeline
    unet, encoder = pipe.unet, pipe.text_encoder
    with torch.no_grad():
        retain = encode(encoder, tokenize(pipe.tokenizer, ["a red square"], "cpu"))
        anchors = encode(encoder, tokenize(pipe.tokenizer, ["a", "a photo of a"], "cpu"))
        prompts = encode(encoder, tokenize(pipe.tokenizer, ["a circle", "a photo of a circle"], "cpu"))
        noisy, t, _ = noised(training_scheduler(pipe), image_latents(pipe, circle_images), torch.Generator().manual_seed(3))
        n = noisy.shape[0]
        picks = [torch.arange(n) % 2, torch.zeros(n, dtype=torch.long), (torch.arange(n) + 1) % 2]  # token, 2 attackers
        seen = []
        hook = unet.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
        try:
            shared = _targets(unet, noisy, t, retain.expand(n, -1, -1), 1.0, [(anchors, k, prompts, k) for k in picks])
        finally:
            hook.remove()
        for k, target in zip(picks, shared[1:]):  # each pair alone, its rows drawn by a call of their own
            e_a, e_p = predict(unet, noisy, t, anchors[k]), predict(unet, noisy, t, prompts[k])
            assert torch.allclose(target, e_a - (e_p - e_a), atol=1e-5)
    assert seen == [n + 2 * 2 * n]  # retain, then both templates' anchor and prompt per image: not 3 pairs x 2 x n
