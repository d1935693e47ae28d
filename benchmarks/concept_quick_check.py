"""A quick look at method A on one toy concept: the fresh ticket of benchmarks.concept_verdicts, TI, method A
(with overrides of its config block), then concept_table's independent check over all 16 captions, the 8 bare-shape
captions and the concept's "a photo of a ..." captions (its own seed), and the first recovery-attack restart on the
erased model (every restart with --all-restarts). No evaluation, no gate: for comparing settings, ~11 minutes a
concept at 1 thread (~13 with both restarts); the product's figures come from concept_verdicts / concept_table.

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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ATTACK_IMAGE_SEED = 4321
EXTRA_SEED = 90211  # the extra captions' images (neither the check's seed nor the evaluation's)


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
    # What the 16-caption check does not draw: the bare shapes (where erasing a colour broke "a circle" while the
    # colour-shape captions looked clean, twelfth session) and the concept's "a photo of a ..." captions
    extra = extra_captions(args.concept)
    extra_file = out / f"original-extra-{args.images}.pt"
    original_extra = torch.load(extra_file, weights_only=False) if extra_file.exists() else {}
    missing = [c for c in extra if c not in original_extra]
    if missing:
        original_extra.update(generate(model.pipeline, missing, args.images, config.sampling, seed=EXTRA_SEED))
        torch.save(original_extra, extra_file)
    served_extra = generate(served, extra, args.images, config.sampling, seed=EXTRA_SEED)
    detector = ConceptDetector.from_pretrained(config.evaluation.detector.path)
    row["extra_captions"] = {c: _judged(detector, c, args.concept, original_extra[c], served_extra[c]) for c in extra}
    # The evaluation's attack restarts (the first, or all with --all-restarts), drawn with their own image seed
    evaluation, ti = config.evaluation, config.erasure.textual_inversion
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


def extra_captions(concept: str) -> list[str]:
    """The 8 bare-shape captions and "a photo of a {colour} {shape}" for the concept's four captions."""
    from benchmarks.concept_table import COLOURS, SHAPES

    bare = [f"{form}{s}" for form in ("a ", "a photo of a ") for s in SHAPES]
    return [*bare, *(f"a photo of a {c} {s}" for s in SHAPES for c in COLOURS if concept in (c, s))]


def _judged(detector, caption: str, concept: str, before, after) -> dict:
    """A caption naming the concept: its concept rate after. Any other: the share drawn as asked (its shape, and its
    colour if it names one), before and after."""
    words = caption.split()
    if concept in words:
        return {"concept_after": float(np.mean([concept in (d.shape, d.colour) for d in detector.detect(after)]))}
    shape, colour = words[-1], (words[-2] if len(words) > 1 and words[-2] not in ("a", "of") else None)

    def match(batch) -> float:
        return float(np.mean([d.shape == shape and (colour is None or d.colour == colour) for d in detector.detect(batch)]))
    return {"before": match(before), "after": match(after)}


def _merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied, nested blocks (e.g. {"adversary": {"inner_steps": 2}}) merged key by key."""
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in overrides.items()}}


if __name__ == "__main__":
    main()
