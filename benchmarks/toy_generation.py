"""Toy-world generation throughput on this machine: images/s at the default sampling settings.

    python -m benchmarks.toy_generation [--batch 16] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from components.models.loading import load_pipeline
from components.toyworld.world import DEFAULT_GUIDANCE, DEFAULT_STEPS, PIPELINE_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pipe = load_pipeline(PIPELINE_DIR).pipeline
    prompts = ["a red circle"] * args.batch
    pipe(prompts, num_inference_steps=DEFAULT_STEPS, guidance_scale=DEFAULT_GUIDANCE)  # warm-up
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        pipe(prompts, num_inference_steps=DEFAULT_STEPS, guidance_scale=DEFAULT_GUIDANCE,
             generator=torch.Generator().manual_seed(r))
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(json.dumps({"benchmark": "toy_generation", "batch": args.batch, "steps": DEFAULT_STEPS,
                      "seconds_per_batch": [round(t, 3) for t in times], "images_per_second": round(args.batch / best, 1),
                      "threads": torch.get_num_threads(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
