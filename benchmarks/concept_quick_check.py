"""A quick look at method A on one toy concept: the fresh ticket of benchmarks.concept_verdicts, TI, method A
(with overrides of its config block), then concept_table's independent check over all 16 captions and the first
recovery-attack restart on the erased model (every restart with --all-restarts). No evaluation, no gate: for
comparing settings, ~11 minutes a concept at 1 thread (~13 with both restarts); the product's figures come from
concept_verdicts / concept_table.

    python -m benchmarks.concept_quick_check CONCEPT [--set '{"concept_guidance": 2.0}'] [--label NAME] [--all-restarts]

Prints one JSON line (RESULT ...) and appends it to OUT/results.jsonl. The original's check images and the TI
token are cached in OUT (default out/quick), so later settings of a concept redo only method A, the check's
erased-model images and the attack.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ATTACK_IMAGE_SEED = 4321


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("concept")
    parser.add_argument("--set", default="{}", help="JSON object of overrides for the lora_ti block")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "quick")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "toy.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=8, help="images per caption in the check")
    parser.add_argument("--all-restarts", action="store_true", help="every attack restart of the config, not the first")
    args = parser.parse_args()

    import numpy as np
    import torch

    from benchmarks.concept_table import _ORIGINAL, check_served
    from benchmarks.fresh_tickets import concept_ticket
    from components.config.run_config import load_run_config
    from components.domain.ticket import load_ticket
    from components.erasure.methods import erase
    from components.erasure.request import ErasureRequest
    from components.erasure.textual_inversion import learn_token
    from components.evaluation.generation import generate
    from components.evaluation.recovery_attack import learn_attack_token, restart_ti_params, token_pipeline
    from components.models.loading import load_pipeline
    from components.takedown.stages import request_for
    from components.toyworld.detector import ConceptDetector

    torch.set_num_threads(args.threads)
    out = args.out
    config = load_run_config(args.config)
    block = config.erasure.lora_ti
    block = type(block).model_validate(_merged(block.model_dump(), json.loads(args.set)))
    config = config.model_copy(update={"erasure": config.erasure.model_copy(update={"method": "lora_ti", "lora_ti": block})})
    loaded = load_ticket(concept_ticket(out / "tickets", args.concept))
    model = load_pipeline(config.base_model.source, device="cpu")
    began = time.perf_counter()
    token_file = out / f"token-{args.concept}.pt"
    if token_file.exists():
        token = torch.load(token_file, weights_only=False)
    else:
        token = learn_token(model.pipeline, ErasureRequest.from_ticket(loaded).concept, loaded.image_paths,
                            config.erasure.textual_inversion, seed=config.runtime.seed)
        torch.save(token, token_file)
    request = request_for(loaded, config, token)
    result = erase(model.pipeline, request, config.erasure)
    erase_s = time.perf_counter() - began
    served = result.fused_copy(model.pipeline)
    original_file = out / f"original-check-{args.images}.pt"
    key = (args.images, config.sampling.model_dump_json())
    if original_file.exists():
        _ORIGINAL[key] = torch.load(original_file, weights_only=False)
    check = check_served(model.pipeline, served, args.concept, args.images, config)
    if not original_file.exists():
        torch.save(_ORIGINAL[key], original_file)
    rows = check["captions"].items()
    row = {"concept": args.concept, "label": args.label, "set": json.loads(args.set), "erase_s": round(erase_s, 1),
           "worst_concept": check["worst_concept_caption"], "worst_other_drop": check["worst_other_drop"],
           "concept_captions": {c: r["concept_after"] for c, r in rows if r["names_concept"]},
           "drops_over_7_points": {c: r["match_before"] - r["match_after"] for c, r in rows
                                   if not r["names_concept"] and r["match_before"] - r["match_after"] > 0.07}}
    # The evaluation's attack restarts (the first, or all with --all-restarts), drawn with their own image seed
    evaluation, ti = config.evaluation, config.erasure.textual_inversion
    detector = ConceptDetector.from_pretrained(config.evaluation.detector.path)
    restarts = evaluation.attack.restarts if args.all_restarts else evaluation.attack.restarts[:1]
    for k, restart in enumerate(restarts, start=1):
        attack_token = learn_attack_token(served, request.concept, request.images, restart_ti_params(ti, restart),
                                          evaluation.attack, config.runtime.seed + restart.seed_offset)
        attacked, attack = token_pipeline(served, attack_token, evaluation.attack.templates)
        drawn = generate(attacked, attack.prompts, args.images, config.sampling, seed=ATTACK_IMAGE_SEED)
        row[f"attack_restart_{k}"] = float(np.mean([args.concept in (d.shape, d.colour)
                                                    for p in attack.prompts for d in detector.detect(drawn[p])]))
    row["total_s"] = round(time.perf_counter() - began, 1)
    print("RESULT", json.dumps(row), flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def _merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied, nested blocks (e.g. {"adversary": {"inner_steps": 2}}) merged key by key."""
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in overrides.items()}}


if __name__ == "__main__":
    main()
