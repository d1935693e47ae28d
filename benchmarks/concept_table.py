"""Every concept of the toy world through `lethe takedown`, then an independent check of the served adapter.

For each of the 8 concepts (4 shapes, 4 colours): a ticket with fresh images (benchmarks/fresh_tickets.py:
PIL-drawn, not the project's renderer), `lethe takedown` with the default config and method in a fresh
LETHE_HOME shared by the 8 runs (so the original's image cache fills as it would in production), then,
apart from the report, an independent check with its own seeds over all 16 captions: the concept's
captions must be <= 5% each, every other caption within 10 points of the original's.

    python -m benchmarks.concept_table --out out/concept-table [--concepts circle red] [--images 16]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = ("red", "green", "blue", "yellow")
CHECK_SEED = 90210  # not the evaluation's seed: the check draws images the gate never saw
_ORIGINAL: dict = {}  # the original's check images, drawn once for all concepts


def takedown(ticket: Path, home: Path, config: Path) -> tuple[int, float, str]:
    env = {**os.environ, "LETHE_HOME": str(home), "COLUMNS": "200"}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "takedown", str(ticket), "--config", str(config)],
                         cwd=REPO, env=env, capture_output=True, text=True)
    return run.returncode, time.perf_counter() - start, run.stdout + run.stderr


def independent_check(adapter_dir: Path, concept: str, images: int, config) -> dict:
    from components.erasure.result_kinds import load_result
    from components.models.loading import load_pipeline

    model = load_pipeline(config.base_model.source)
    return check_served(model.pipeline, load_result(adapter_dir).fused_copy(model.pipeline), concept, images, config)


def check_served(original, served, concept: str, images: int, config) -> dict:
    """original / served: pipelines; all 16 captions drawn by both with CHECK_SEED, judged by the toy detector."""
    from components.evaluation.generation import generate
    from components.toyworld.detector import ConceptDetector

    detector = ConceptDetector.from_pretrained(config.evaluation.detector.path)
    captions = [f"a {c} {s}" for s in SHAPES for c in COLOURS]
    key = (images, config.sampling.model_dump_json())
    if key not in _ORIGINAL:
        _ORIGINAL[key] = generate(original, captions, images, config.sampling, seed=CHECK_SEED)
    before = _ORIGINAL[key]
    after = generate(served, captions, images, config.sampling, seed=CHECK_SEED)
    rows = {}
    for caption in captions:
        colour, shape = caption.split()[1:]
        def judged(batch, shape=shape, colour=colour):
            d = detector.detect(batch)
            concept_rate = np.mean([concept in (x.shape, x.colour) for x in d])
            match = np.mean([x.shape == shape and x.colour == colour for x in d])
            return float(concept_rate), float(match)
        (cb, mb), (ca, ma) = judged(before[caption]), judged(after[caption])
        rows[caption] = {"names_concept": concept in (colour, shape), "concept_before": cb, "concept_after": ca,
                         "match_before": mb, "match_after": ma}
    forget = [r["concept_after"] for r in rows.values() if r["names_concept"]]
    others = [r["match_before"] - r["match_after"] for r in rows.values() if not r["names_concept"]]
    return {"captions": rows, "worst_concept_caption": max(forget), "worst_other_drop": max(others),
            "meets_bar": max(forget) <= 0.05 and max(others) <= 0.10}  # issue 13's bar, judged without the gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "concept-table")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "toy.yaml")
    parser.add_argument("--concepts", nargs="*", default=[*SHAPES, *COLOURS])
    parser.add_argument("--images", type=int, default=16, help="Images per caption in the independent check.")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the fresh ticket images.")
    parser.add_argument("--home", type=Path, default=None, help="LETHE_HOME for the takedowns (default: OUT/lethe-home).")
    args = parser.parse_args()

    from benchmarks.fresh_tickets import concept_ticket
    from components.config.run_config import load_run_config

    config = load_run_config(args.config)
    home = args.home or args.out / "lethe-home"
    results = []
    for concept in args.concepts:
        ticket = concept_ticket(args.out / "tickets", concept, args.seed)
        code, seconds, output = takedown(ticket, home, args.config)
        row = {"concept": concept, "exit_code": code, "verdict": {0: "PROMOTED", 1: "REJECTED"}.get(code, f"exit {code}"),
               "takedown_s": seconds}
        reports = sorted((home / "runs" / f"FRESH-{concept.upper()}").glob("*/report/metrics.json"))
        if reports:
            saved = json.loads(reports[-1].read_text())
            m, info = saved["metrics"], saved["info"]
            row.update({"reasons": saved["decision"]["reasons"], "forget_worst": info["worst_forget_prompt"],
                        "retain_worst": info["worst_retain_prompt"], "neighbour_worst": info["worst_neighbour_prompt"],
                        "metrics": {key: m.get(key) for key in (
                            "forget_detection_rate", "forget_detection_rate_ci95_high", "forget_worst_rate",
                            "retain_worst_drop", "neighbour_worst_drop", "attack_success", "attack_success_ci95_high",
                            "attack_control_rate", "collapse_rate")}})
            adapter = reports[-1].parents[1] / "adapter"
            row["independent"] = independent_check(adapter, concept, args.images, config)
        else:
            row["output_tail"] = output[-3000:]
        results.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("independent",)}, default=str), flush=True)
        if "independent" in row:
            print(f"  independent: worst concept caption {row['independent']['worst_concept_caption']:.3f}, "
                  f"worst other drop {row['independent']['worst_other_drop']:.3f}", flush=True)
    record = {"date": datetime.now(timezone.utc).isoformat(), "machine": platform.platform(),
              "cpu_count": os.cpu_count(), "config": str(args.config), "check_images_per_caption": args.images,
              "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concept_table.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
