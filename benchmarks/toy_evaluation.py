"""The full evaluation of one erasure method on the toy world, as the pipeline runs it, with its cost.

    python -m benchmarks.toy_evaluation --method lora_ti [--out out/bench/evaluation]

Runs the example ticket (erase "circle", its 5 images) at configs/toy.yaml: TI first for method A,
the erasure, then `evaluate_result` (forget, retain, KID, recovery attack). Writes the report to
OUT/<method>/ and prints one JSON line: metrics, the gate's decision, and wall times (erasure,
generation with images/s, attack).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from components.erasure.methods import METHODS, erase
from components.erasure.request import ErasureRequest
from components.evaluation.prompt_sets import with_prompt_sets
from components.erasure.textual_inversion import learn_token
from components.evaluation.decision import decide, limits_of
from components.evaluation.evaluate import evaluate_result
from components.evaluation.report import identifiers_for, write_report
from components.models.loading import load_pipeline
from components.config.run_config import load_run_config
from components.domain.ticket import load_ticket

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--config", default=str(REPO / "configs/toy.yaml"))
    parser.add_argument("--ticket", default=str(REPO / "examples/tickets/erase-circle/ticket.yaml"))
    parser.add_argument("--out", default=str(REPO / "out/bench/evaluation"))
    args = parser.parse_args()

    cfg = load_run_config(args.config)
    erasure = cfg.erasure.model_copy(update={"method": args.method})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_pipeline(cfg.base_model.path, device=device)
    loaded = load_ticket(args.ticket)
    t0 = time.perf_counter()
    token = None
    if args.method == "lora_ti":
        token = learn_token(model.pipeline, ErasureRequest.from_ticket(loaded).concept, loaded.image_paths,
                            erasure.textual_inversion, seed=cfg.runtime.seed)
    request = with_prompt_sets(ErasureRequest.from_ticket(loaded, seed=cfg.runtime.seed, learned_token=token),
                               cfg.evaluation)
    result = erase(model.pipeline, request, erasure)
    erase_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    evaluation = evaluate_result(model, result, request, cfg)
    evaluate_s = time.perf_counter() - t1
    decision = decide(evaluation.metrics, cfg.thresholds)
    write_report(evaluation, decision, identifiers_for(loaded.ticket, model, result), Path(args.out) / args.method,
                 title=f"toy evaluation benchmark: {args.method}", thresholds=limits_of(cfg.thresholds))
    info = evaluation.info
    print(json.dumps({"method": args.method, "device": device, "machine": platform.node(),
                      "threads": torch.get_num_threads(), "erase_s_incl_ti": round(erase_s, 1),
                      "evaluate_s": round(evaluate_s, 1), "generation_s": round(info["generation_s"], 1),
                      "generation_images_per_s": round(info["generation_images_per_s"], 2),
                      "attack_s": round(info["attack_s"], 1), "images_drawn": info["images_drawn"],
                      "metrics": evaluation.metrics, "passed": decision.passed, "reasons": decision.reasons}))


if __name__ == "__main__":
    main()
