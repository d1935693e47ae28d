"""How hard method A's anchored target pushes, by timestep: the mean squared difference between the prediction for a
forget prompt and for its anchor (the prompt without the concept's words), on noised latents of the ticket's pictures
(all of the concept) and of the original model's drawings of the anchor (which show the concept
for some anchors: benchmarks.anchor_drawings).

    python -m benchmarks.anchored_target_gap
"""
from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

import torch

CASES = (("yellow", "a yellow circle", "a circle"), ("triangle", "a blue triangle", "a blue"))
TIMESTEPS = (900, 700, 500, 300, 100)


def main() -> None:
    from benchmarks.fresh_tickets import concept_ticket
    from components.domain.ticket import load_ticket
    from components.erasure.denoising import encode, image_latents, predict, tokenize, training_scheduler
    from components.models.loading import load_pipeline
    from components.toyworld.world import PIPELINE_DIR

    pipe = load_pipeline(PIPELINE_DIR).pipeline
    scheduler = training_scheduler(pipe)
    with TemporaryDirectory() as scratch, torch.no_grad():
        for concept, prompt, anchor in CASES:  # the tickets of benchmarks.concept_verdicts (seed 7 + the concept's index)
            ticket = load_ticket(concept_ticket(Path(scratch), concept))
            drawn = pipe([anchor] * 10, num_inference_steps=25, guidance_scale=5.0, output_type="latent",
                         generator=[torch.Generator().manual_seed(i) for i in range(10)]).images.float()
            states = encode(pipe.text_encoder, tokenize(pipe.tokenizer, [prompt, anchor], "cpu"))
            for name, latents in (("ticket pictures", image_latents(pipe, ticket.image_paths)), ("anchor drawings", drawn)):
                n, gaps = latents.shape[0], []
                noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))  # one draw for every t
                for t in TIMESTEPS:
                    tt = torch.full((n,), t)
                    noisy = scheduler.add_noise(latents, noise, tt)
                    e_p, e_a = (predict(pipe.unet, noisy, tt, s.expand(n, -1, -1)) for s in states.split(1))
                    gaps.append(f"t={t}: {((e_p - e_a) ** 2).mean().item():.4f}")
                print(f"{prompt!r} vs {anchor!r} on {name}: " + ", ".join(gaps), flush=True)


if __name__ == "__main__":
    main()
