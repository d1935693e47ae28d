"""Which of method A's anchors lean to the concept: what the model draws for them when nothing in an image decides.

A forget prompt's anchor is the prompt without the concept's words ("a circle" for "a yellow circle"). Where the
model draws the anchor as the concept anyway (the toy model draws bare shapes yellow 43% of the time), holding the
anchor where it is holds the concept too: a recovery attack that learns only "a shape" gets yellow. Such an anchor is
trained instead to the prompt with another value of the concept's slot (substitute anchors, lora_ti.py); an anchor
that does not lean is kept, since substituting it breaks what it draws (erasing blue, "a circle" 100% -> 12%).

An anchor leans to the concept when the model's prediction for it, from pure noise at the last training timestep
(where sampling starts, so only the prompt and the model's prior decide), is nearer its prediction for the forget
prompt than for the forget prompt with any substitute. On the toy model every bare shape leans to yellow (0.46-0.64x
the distance of the nearest other colour) and none to red, green or blue (BENCHMARKS.md, twelfth session).
"""
from __future__ import annotations

import torch

from .denoising import encode, predict, tokenize

SAMPLES = 32  # noise latents per prompt: on the toy model every anchor leans the same way at 32 and at 64


@torch.no_grad()
def anchor_leanings(unet, text_encoder, tokenizer, anchors: dict[str, tuple[str, list[str]]], timestep: int,
                    seed: int, samples: int = SAMPLES) -> dict[str, dict]:
    """anchors: anchor -> (its forget prompt, that prompt with each substitute); timestep: the schedule's last.
    Returns anchor -> {"distances": prompt -> mean squared distance of the predictions from the anchor's, "leans":
    whether the forget prompt's is the nearest}."""
    if not anchors:
        return {}
    config, device = unet.config, unet.device
    noise = torch.randn((samples, config.in_channels, config.sample_size, config.sample_size),
                        generator=torch.Generator().manual_seed(seed)).to(device)
    t = torch.full((samples,), timestep, device=device)
    out = {}
    for anchor, (prompt, substitutes) in anchors.items():
        prompts = [anchor, prompt, *substitutes]
        states = encode(text_encoder, tokenize(tokenizer, prompts, device))
        preds = [predict(unet, noise, t, states[k:k + 1].expand(samples, -1, -1)) for k in range(len(prompts))]
        distances = {p: float(((preds[0] - e) ** 2).mean()) for p, e in zip(prompts[1:], preds[1:])}
        out[anchor] = {"distances": distances, "leans": min(distances, key=distances.get) == prompt}
    return out
