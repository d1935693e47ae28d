"""Erase "circle" (or circle + square) from the toy world with one method and measure before/after.

    python -m benchmarks.toy_erasure --method lora_ti [--set '{"learning_rate": 0.01}'] [--concepts circle square]

Prints one JSON line: the method, its settings, erase wall time, and per shape the detector's
shape accuracy on "a {colour} {shape}" prompts before and after (8 images per prompt, seeded).
Defaults come from configs/toy.yaml; --set overrides fields of that method's block.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from components.erasure.methods import METHODS, erase
from components.erasure.request import Concept, ErasureRequest
from components.models.loading import load_pipeline
from components.config.run_config import load_run_config
from components.toyworld.detector import ConceptDetector
from components.toyworld.fidelity import shape_rates
from components.toyworld.shapes import COLOURS, SHAPES
from components.toyworld.world import DETECTOR_DIR

REPO = Path(__file__).resolve().parents[1]
TICKET_IMAGES = {"circle": REPO / "examples/tickets/erase-circle"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--set", default="{}", help="JSON object of overrides for the method's config block")
    parser.add_argument("--concepts", nargs="+", default=["circle"])
    parser.add_argument("--images-per-prompt", type=int, default=8)
    parser.add_argument("--config", default=str(REPO / "configs/toy.yaml"))
    parser.add_argument("--seed", type=int, default=None, help="erasure seed (default: the config's runtime.seed)")
    parser.add_argument("--skip-before", action="store_true", help="do not measure the unedited model")
    args = parser.parse_args()

    cfg = load_run_config(args.config)
    block = getattr(cfg.erasure, args.method).model_copy(update=json.loads(args.set))
    erasure = cfg.erasure.model_copy(update={"method": args.method, args.method: block})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = load_pipeline(cfg.base_model.path, device=device).pipeline
    detector = ConceptDetector.from_pretrained(DETECTOR_DIR)
    images = sorted(TICKET_IMAGES[args.concepts[0]].glob("*.png")) if args.concepts[0] in TICKET_IMAGES else []
    retain = [f"a {c} {s}" for s in SHAPES if s not in args.concepts for c in COLOURS]
    request = ErasureRequest([Concept(c) for c in args.concepts], images=images, retain_prompts=retain,
                             seed=cfg.runtime.seed if args.seed is None else args.seed)
    before = None if args.skip_before else shape_rates(pipe, detector, args.images_per_prompt)
    result = erase(pipe, request, erasure)
    result.apply(pipe)
    after = shape_rates(pipe, detector, args.images_per_prompt)
    print(json.dumps({"method": args.method, "concepts": args.concepts, "settings": block.model_dump(), "seed": request.seed,
                      "erase_wall_time_s": round(result.wall_time_s, 2), "device": device,
                      "machine": platform.node(), "changed_tensors": len(result.changed_tensors()),
                      "before": before, "after": after}))


if __name__ == "__main__":
    main()
