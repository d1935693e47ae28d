"""How often does a concept's TI token, learned on the ORIGINAL model, draw the concept there? That is the
recovery attack's control (the gate voids an attack whose control is under `min_attack_control_rate`), measured
with more images than the evaluation draws, for TI settings given as overrides.

    python -m benchmarks.token_control CONCEPT [--variants '[{}, {"steps": 500}, {"seed": 1}]'] [--images 16] [--image-seed 1234]

The ticket is the concept harnesses' fresh ticket (benchmarks.fresh_tickets.concept_ticket). Per variant (overrides of
erasure.textual_inversion; "seed" is TI's seed): TI, then IMAGES images of each attack prompt on the original,
judged by the toy detector. Prints one JSON line per variant: the concept rate and what was drawn.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE_SEED = 1234  # not the evaluation's (runtime.seed): other images than the gate's control saw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("concept")
    parser.add_argument("--variants", default="[{}]", help="JSON list of overrides of erasure.textual_inversion")
    parser.add_argument("--images", type=int, default=16, help="images per attack prompt")
    parser.add_argument("--image-seed", type=int, default=IMAGE_SEED,
                        help="the images' seed (the evaluation's control uses runtime.seed)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "token-control")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "toy.yaml")
    args = parser.parse_args()

    import torch

    from benchmarks.fresh_tickets import concept_ticket
    from components.config.run_config import load_run_config
    from components.domain.ticket import load_ticket
    from components.erasure.request import ErasureRequest
    from components.erasure.textual_inversion import learn_token
    from components.evaluation.generation import generate
    from components.evaluation.recovery_attack import token_pipeline
    from components.models.loading import load_pipeline
    from components.toyworld.detector import ConceptDetector

    torch.set_num_threads(1)
    config = load_run_config(args.config)
    loaded = load_ticket(concept_ticket(args.out / "tickets", args.concept))
    concept = ErasureRequest.from_ticket(loaded).concept
    model = load_pipeline(config.base_model.source, device="cpu")
    detector = ConceptDetector.from_pretrained(config.evaluation.detector.path)
    for variant in json.loads(args.variants):
        overrides = {k: v for k, v in variant.items() if k != "seed"}
        ti = config.erasure.textual_inversion.model_validate(
            {**config.erasure.textual_inversion.model_dump(), **overrides})
        began = time.perf_counter()
        token = learn_token(model.pipeline, concept, loaded.image_paths, ti, seed=variant.get("seed", config.runtime.seed))
        ti_s = time.perf_counter() - began
        pipe, attack = token_pipeline(model.pipeline, token, config.evaluation.attack.templates)
        drawn = generate(pipe, attack.prompts, args.images, config.sampling, seed=args.image_seed)
        seen = [(d.shape, d.colour) for p in attack.prompts for d in detector.detect(drawn[p])]
        print(json.dumps({"concept": args.concept, "variant": variant, "ti_s": round(ti_s, 1),
                          "rate": sum(args.concept in s for s in seen) / len(seen), "images": len(seen),
                          "drawn": {f"{s}/{c}": seen.count((s, c)) for s, c in sorted(set(seen))}}), flush=True)


if __name__ == "__main__":
    main()
