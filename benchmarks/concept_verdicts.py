"""The gate's verdict for every toy concept under one or more samplers: the takedown's stages without
orchestration, on any device, one process per (concept, sampler), several at once.

    python -m benchmarks.concept_verdicts --out out/concept-verdicts --device cuda --jobs 16 \
        --samplers default dpm_solver_pp:12 [--concepts circle red] [--fidelity 32]

Per concept: a fresh ticket (benchmarks.fresh_tickets, the seeds of benchmarks.concept_table), TI, the
config's method, the evaluation and the decision exactly as components.takedown.stages runs them (no ZenML,
no registry: the stages are the same functions), then concept_table's independent check with its own
seeds over all 16 captions, drawn with the config's sampler whatever the gate's. A sampler is `default`
(the config's) or `NAME:STEPS` (run_config Sampling.scheduler). `--fidelity N` also measures the toy world's
prompt fidelity (N images per caption) under each sampler. For a quick look at many settings on a lent GPU;
the product's figures come from `lethe takedown` (benchmarks.concept_table).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.fresh_tickets import CONCEPTS, FIRST_SEED, concept_ticket

REPO = Path(__file__).resolve().parents[1]


def sampling_for(config, sampler: str):
    if sampler == "default":
        return config.sampling
    name, steps = sampler.split(":")
    return config.sampling.model_copy(update={"scheduler": name, "steps": int(steps)})


def one(concept: str, sampler: str, out: Path, device: str, config_path: Path, check_images: int,
        ticket_seed: int = FIRST_SEED) -> dict:
    import torch

    from benchmarks.concept_table import check_served
    from components.config.run_config import load_run_config
    from components.domain.ticket import load_ticket
    from components.erasure.methods import erase
    from components.erasure.textual_inversion import learn_token
    from components.evaluation.decision import decide
    from components.evaluation.evaluate import evaluate_result
    from components.erasure.request import ErasureRequest
    from components.models.loading import load_pipeline
    from components.takedown.stages import request_for

    torch.set_num_threads(1)
    served_config = load_run_config(config_path)  # the check draws as a user would: with the config's sampler
    config = served_config.model_copy(update={"sampling": sampling_for(served_config, sampler)})
    loaded = load_ticket(concept_ticket(out / "tickets", concept, ticket_seed))
    model = load_pipeline(config.base_model.source, device=device)
    times = {}
    t = time.perf_counter()
    token = learn_token(model.pipeline, ErasureRequest.from_ticket(loaded).concept, loaded.image_paths,
                        config.erasure.textual_inversion, seed=config.runtime.seed)
    times["ti_s"], t = time.perf_counter() - t, time.perf_counter()
    request = request_for(loaded, config, token)
    result = erase(model.pipeline, request, config.erasure)
    times["erase_s"], t = time.perf_counter() - t, time.perf_counter()
    evaluation = evaluate_result(model, result, request, config, cache_folder=out / "cache" / f"{concept}-{sampler}")
    times["evaluate_s"] = time.perf_counter() - t
    decision = decide(evaluation.metrics, config.thresholds)
    m, info = evaluation.metrics, evaluation.info
    check = check_served(model.pipeline, result.fused_copy(model.pipeline), concept, check_images, served_config)
    return {"concept": concept, "sampler": sampler, "device": device, "ticket_seed": ticket_seed,
            "verdict": "PROMOTED" if decision.passed else "REJECTED",
            "reasons": decision.reasons, **{k: round(v, 1) for k, v in times.items()},
            "forget_worst": info["worst_forget_prompt"], "retain_worst": info["worst_retain_prompt"],
            "neighbour_worst": info["worst_neighbour_prompt"],
            "metrics": {key: m.get(key) for key in ("forget_detection_rate_ci95_high", "forget_worst_rate",
                                                    "retain_accuracy_drop_ci95_high", "retain_worst_drop",
                                                    "neighbour_accuracy_drop_ci95_high", "neighbour_worst_drop",
                                                    "attack_success", "attack_control_rate", "collapse_rate",
                                                    "kid", "retain_clip_drop")},
            "images_drawn": info["images_drawn"], "sequential": info.get("sequential"),
            # agrees: the gate promoted exactly when the check's bar holds (the check runs no recovery attack)
            "independent": {**{k: check[k] for k in ("worst_concept_caption", "worst_other_drop", "meets_bar")},
                            "agrees": decision.passed == check["meets_bar"]},
            # per caption naming the concept: its rate after; for the others, their match rate before -> after
            "independent_captions": {c: r["concept_after"] if r["names_concept"] else [r["match_before"], r["match_after"]]
                                     for c, r in check["captions"].items()}}


def fidelity(samplers: list[str], images: int, device: str, config_path: Path) -> dict:
    from components.config.run_config import load_run_config
    from components.evaluation.generation import sampling_pipeline
    from components.models.loading import load_pipeline
    from components.toyworld.detector import ConceptDetector
    from components.toyworld.fidelity import measure_fidelity

    config = load_run_config(config_path)
    model = load_pipeline(config.base_model.source, device=device)
    detector = ConceptDetector.from_pretrained(config.evaluation.detector.path)
    out = {}
    for sampler in samplers:
        sampling = sampling_for(config, sampler)
        t = time.perf_counter()
        f = measure_fidelity(sampling_pipeline(model.pipeline, sampling), detector, images, steps=sampling.steps,
                             guidance=sampling.guidance_scale).as_dict()
        out[sampler] = {k: f[k] for k in ("shape_accuracy", "colour_accuracy", "worst_caption", "worst_caption_accuracy")}
        out[sampler]["seconds"] = round(time.perf_counter() - t, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "concept-verdicts")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "toy.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--concepts", nargs="*", default=list(CONCEPTS))
    parser.add_argument("--samplers", nargs="*", default=["default"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--check-images", type=int, default=16)
    parser.add_argument("--fidelity", type=int, default=0, help="images per caption for the fidelity row (0: none)")
    parser.add_argument("--ticket-seed", type=int, default=FIRST_SEED,
                        help="first seed of the fresh tickets' images (another seed: other images of each concept)")
    parser.add_argument("--one", nargs=2, metavar=("CONCEPT", "SAMPLER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:
        row = one(*args.one, args.out, args.device, args.config, args.check_images, args.ticket_seed)
        (args.out / f"{args.one[0]}-{args.one[1].replace(':', '-')}.json").write_text(json.dumps(row, indent=2) + "\n")
        return

    def run(job):
        concept, sampler = job
        cmd = [sys.executable, "-m", "benchmarks.concept_verdicts", "--out", str(args.out), "--config", str(args.config),
               "--device", args.device, "--check-images", str(args.check_images), "--ticket-seed", str(args.ticket_seed),
               "--one", concept, sampler]
        done = subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        if done.returncode:
            print(f"{concept} {sampler}: exit {done.returncode}\n{done.stderr[-2000:]}", flush=True)
        else:
            print((args.out / f"{concept}-{sampler.replace(':', '-')}.json").read_text(), flush=True)

    jobs = [(c, s) for s in args.samplers for c in args.concepts]
    with ThreadPoolExecutor(args.jobs) as pool:
        measured = pool.submit(fidelity, args.samplers, args.fidelity, args.device, args.config) if args.fidelity else None
        list(pool.map(run, jobs))
        if measured is not None:
            (args.out / "fidelity.json").write_text(json.dumps(measured.result(), indent=2) + "\n")
            print(json.dumps(measured.result()), flush=True)


if __name__ == "__main__":
    main()
