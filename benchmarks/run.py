"""Lethe at Stable Diffusion scale: time and memory of every method, generation and model loading.

    python -m benchmarks.run --suite sd21 --device cuda                      # full step counts, 1 warm-up, 3 repeats
    python -m benchmarks.run --suite sd15 --device cpu --steps 2 --sampling-steps 2 --warmup 0 --repeats 1
    python -m benchmarks.run --suite tiny --device cpu --steps 2             # scaled-down, for tests

The suite builds the architecture with random weights (benchmarks/sd_architectures.py), saves it with
`save_pretrained` and loads it back through `components.models.loading` (the load is timed), then runs
the real code paths at the step counts and sampling settings of the suite's run config
(configs/sd15.yaml, sd21.yaml, toy.yaml):

  load        load_pipeline from the local folder (weights hashed for lineage, as in production)
  c           method C (closed form) for 1, 10, 50 and 100 concepts in one call, always in full
  ti          textual inversion (erasure.textual_inversion.steps)
  a           method A, LoRA + TI (erasure.lora_ti.steps; the token from `ti` is reused, as the pipeline does)
  b           method B, text-encoder ascent (erasure.te_ascent.epochs)
  generation  evaluation images at the configured sampling steps and guidance, batched

`--steps N` runs at most N training steps (B: whole epochs) and `--sampling-steps N` N sampling steps;
the time at the configured counts is then extrapolated from the per-step times (benchmarks/step_clock.py)
and every row says whether it was. Every training and sampling row counts its U-Net passes (samples
forward / backward, benchmarks/unet_passes.py). Then `ticket`: one ticket's device time and passes, TI +
the config's method + the evaluation's work counted from the config (components.evaluation.workload) and
priced at the measured seconds per image and per TI step, with and without the original-image cache
(benchmarks/ticket_cost.py). Prints tables and writes JSON (`--out`).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from components.erasure.methods import erase
from components.erasure.request import Concept, ErasureRequest
from components.erasure.textual_inversion import learn_token
from components.evaluation.generation import generate
from components.evaluation.prompt_sets import with_prompt_sets
from components.evaluation.workload import evaluation_workload
from components.models.loading import load_pipeline, weights_sha256
from components.config.run_config import load_run_config

from .peak_memory import peak_memory
from .sd_architectures import ARCHITECTURES, random_pipeline
from .ticket_cost import ticket_cost, ticket_table
from .step_clock import StepTimes, optimizer_steps, synchronize, unet_calls
from .unet_passes import UnetPasses, counting_unet_passes

REPO = Path(__file__).resolve().parents[1]
TICKET_IMAGES = sorted((REPO / "examples/tickets/erase-circle").glob("*.png"))
# An SD ticket names its near neighbours (the evaluation draws at least min_images_per_set of them).
NEIGHBOURS = ("a photo of a ball", "a photo of a wheel", "a photo of a ring", "a photo of a coin")
MEASUREMENTS = ("load", "c", "ti", "a", "b", "generation")
CONCEPT_COUNTS = (1, 10, 50, 100)
AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=sorted(ARCHITECTURES), required=True)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                   help="weights' dtype; default: the run config's runtime.dtype on CUDA, float32 on the CPU")
    p.add_argument("--autocast", choices=sorted(AUTOCAST), default="none",
                   help="run the methods and generation under torch.autocast at this dtype")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="U-Net gradient checkpointing during the training methods (less memory, more compute)")
    p.add_argument("--resolution", type=int, help="pixels; default: the architecture's (SD 1.5 512, SD 2.1 768)")
    p.add_argument("--steps", type=int, help="run at most this many training steps and extrapolate")
    p.add_argument("--sampling-steps", type=int, help="run this many sampling steps and extrapolate")
    p.add_argument("--generation-batch", type=int, help="images per generation call; default: evaluation.batch_size")
    p.add_argument("--concepts", type=int, nargs="+", default=list(CONCEPT_COUNTS), help="method C concept counts")
    p.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before each measurement")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the median is reported)")
    p.add_argument("--out", type=Path, help="JSON path; default out/bench/sd_scale/<suite>-<device>.json")
    return p.parse_args(argv)


# ─── measuring ─────────────────────────────────────────────────────────────────────────────────────

def measure(fn, device, warmup: int, repeats: int, clock=None, unet=None):
    """Run fn() `warmup` times untimed, then `repeats` times under `clock` (a step clock) and peak memory,
    counting `unet`'s passes if given.

    Returns (the last result, the runs' StepTimes, peak bytes, memory kind); each StepTimes carries the
    run's U-Net passes as `.passes`."""
    for _ in range(warmup):
        fn()
    runs, result = [], None
    with peak_memory(device) as peak:
        for _ in range(repeats):
            with (clock() if clock else whole_run(device)) as times, \
                    (counting_unet_passes(unet) if unet is not None else contextlib.nullcontext(UnetPasses())) as passes:
                result = fn()
            times.passes = passes
            runs.append(times)
    return result, runs, peak.bytes, peak.kind


@contextlib.contextmanager
def whole_run(device):
    synchronize(device)
    times = StepTimes(start=time.perf_counter())
    try:
        yield times
    finally:
        synchronize(device)
        times.end = time.perf_counter()


def row(name: str, what: str, runs: list[StepTimes], peak: int, memory_kind: str, config_steps: int | None = None,
        **extra) -> dict:
    measured = statistics.median(r.total_s for r in runs)
    measured_steps = len(runs[0].steps) if config_steps else None
    estimate = statistics.median(r.estimate_s(config_steps) for r in runs) if config_steps else measured
    out = {"name": name, "what": what, "seconds": estimate, "measured_seconds": measured,
           "runs_seconds": [r.total_s for r in runs], "repeats": len(runs),
           "config_steps": config_steps, "measured_steps": measured_steps,
           "extrapolated": bool(config_steps) and measured_steps != config_steps,
           "peak_memory_bytes": peak, "memory_kind": memory_kind, **extra}
    if config_steps and measured_steps:
        setups, steadies, _ = zip(*(r.split() for r in runs))
        out["setup_seconds"] = statistics.median(setups)
        out["seconds_per_step"] = statistics.median(steadies)
    passes = getattr(runs[-1], "passes", None)
    if passes is not None and (passes.forward or passes.backward):
        # U-Net samples forward / backward at the configured step count (the measured ones scaled)
        scale = config_steps / measured_steps if config_steps and measured_steps else 1.0
        out["unet_passes"] = vars(passes.scaled(scale))
    return out


def record(results: list[dict], r: dict) -> None:
    """Keep a result and print it at once: a CPU run at SD scale takes many minutes."""
    results.append(r)
    print(f"{r['name']}: {r['seconds']:.4g} s{' (extrapolated)' if r['extrapolated'] else ''}", flush=True)


def capped(config_steps: int, cap: int | None) -> int:
    return min(config_steps, cap) if cap else config_steps


# ─── the suite ─────────────────────────────────────────────────────────────────────────────────────

def run_suite(args) -> dict:
    arch = ARCHITECTURES[args.suite]
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else \
        ("cpu" if args.device == "auto" else args.device)
    config = load_run_config(REPO / "configs" / arch.config_file)
    dtype = args.dtype or (config.runtime.dtype if device.startswith("cuda") else "float32")
    resolution = args.resolution or arch.resolution
    erasure = config.erasure
    results: list[dict] = []
    report = {"suite": args.suite, "architecture": arch.name, "resolution": resolution,
              "device": device, "dtype": dtype, "autocast": args.autocast,
              "gradient_checkpointing": args.gradient_checkpointing, "warmup": args.warmup,
              "repeats": args.repeats, "config": f"configs/{arch.config_file}",
              "date": time.strftime("%Y-%m-%d"), "machine": machine_facts(device), "results": results}

    with tempfile.TemporaryDirectory(prefix="lethe-bench-") as folder:
        random_pipeline(arch, resolution).save_pretrained(folder)
        gc.collect()
        if "load" in args.only:
            hash_s = timed(lambda: weights_sha256(Path(folder)))
            loaded, runs, peak, kind = measure(lambda: load_pipeline(folder, device=device, dtype=dtype),
                                               device, args.warmup, args.repeats)
            record(results, row("load", "load_pipeline from a local save_pretrained folder (page cache warm)",
                               runs, peak, kind, hash_seconds=hash_s,
                               folder_bytes=sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())))
            pipe = loaded.pipeline
        else:
            pipe = load_pipeline(folder, device=device, dtype=dtype).pipeline
    if args.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    autocast = (torch.autocast(torch.device(device).type, dtype=AUTOCAST[args.autocast])
                if AUTOCAST[args.autocast] else contextlib.nullcontext())

    concept = Concept("circle")
    retain = list(config.evaluation.retain_prompts)
    request = ErasureRequest([concept], images=TICKET_IMAGES, retain_prompts=retain)

    def with_method(method: str, **params):
        block = getattr(erasure, method).model_copy(update=params) if params else getattr(erasure, method)
        return erasure.model_copy(update={"method": method, method: block})

    def run(fn):
        with autocast:
            return fn()

    if "c" in args.only:
        for n in args.concepts:
            req = ErasureRequest([Concept(f"concept{i}") for i in range(n)], retain_prompts=retain)
            result, runs, peak, kind = measure(lambda req=req: run(lambda: erase(pipe, req, with_method("closed_form"))),
                                               device, args.warmup, args.repeats)
            record(results, row(f"c_{n}", f"method C, {n} concept{'s' if n > 1 else ''} in one call", runs, peak, kind,
                               concepts=n, changed_tensors=len(result.changed_tensors()),
                               erase_columns=result.hyperparameters["erase_columns"]))

    token = None
    if "ti" in args.only or "a" in args.only:
        ti = erasure.textual_inversion
        ti_run = ti.model_copy(update={"steps": capped(ti.steps, args.steps)})
        token, runs, peak, kind = measure(lambda: run(lambda: learn_token(pipe, concept, TICKET_IMAGES, ti_run)),
                                          device, args.warmup, args.repeats, lambda: optimizer_steps(device), pipe.unet)
        if "ti" in args.only:
            record(results, row("ti", f"textual inversion, batch {ti.batch_size}", runs, peak, kind, ti.steps))

    if "a" in args.only:
        a = erasure.lora_ti
        a_request = ErasureRequest([concept], images=TICKET_IMAGES, retain_prompts=retain, learned_token=token)
        adapter, runs, peak, kind = measure(
            lambda: run(lambda: erase(pipe, a_request, with_method("lora_ti", steps=capped(a.steps, args.steps)))),
            device, args.warmup, args.repeats, lambda: optimizer_steps(device), pipe.unet)
        with tempfile.TemporaryDirectory() as tmp:
            adapter.save(tmp)
            artefact = sum(p.stat().st_size for p in Path(tmp).iterdir())
        record(results, row("a", f"method A (LoRA rank {a.rank} + TI token), batch {a.batch_size or 'all'}, "
                                "excluding TI", runs, peak, kind, a.steps, artefact_bytes=artefact))

    if "b" in args.only:
        b = erasure.te_ascent
        per_epoch = math.ceil(len(TICKET_IMAGES) / b.batch_size)
        epochs = min(b.epochs, math.ceil(args.steps / per_epoch)) if args.steps else b.epochs
        delta, runs, peak, kind = measure(lambda: run(lambda: erase(pipe, request, with_method("te_ascent", epochs=epochs))),
                                          device, args.warmup, args.repeats, lambda: optimizer_steps(device), pipe.unet)
        record(results, row("b", f"method B, {b.epochs} epochs x {per_epoch} steps of batch {b.batch_size}", runs, peak,
                           kind, b.epochs * per_epoch, changed_tensors=len(delta.changed_tensors())))

    if "generation" in args.only:
        sampling = config.sampling.model_copy(update={"height": resolution, "width": resolution})
        run_sampling = sampling.model_copy(update={"steps": args.sampling_steps or sampling.steps})
        batch = args.generation_batch or config.evaluation.batch_size
        images, runs, peak, kind = measure(
            lambda: run(lambda: generate(pipe, [concept.text], batch, run_sampling, batch_size=batch)),
            device, args.warmup, args.repeats, lambda: unet_calls(pipe.unet), pipe.unet)
        generation = row("generation", f"{batch} images at {sampling.steps} DDIM steps, guidance "
                                       f"{sampling.guidance_scale}", runs, peak, kind, sampling.steps, images=batch)
        generation["images_per_second"] = batch / generation["seconds"]
        record(results, generation)

    eval_request = with_prompt_sets(ErasureRequest([concept], images=TICKET_IMAGES, neighbours=list(NEIGHBOURS),
                                                   learned_token=token if erasure.method == "lora_ti" else None),
                                    config.evaluation)
    report["ticket"] = ticket_cost({r["name"]: r for r in results}, erasure.method,
                                   evaluation_workload(eval_request, config))
    return report


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_facts(device: str) -> dict:
    import diffusers
    import peft
    import transformers

    facts = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
             "diffusers": diffusers.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
             "torch_threads": torch.get_num_threads(), "cpu": _cpu_model()}
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name()
    return facts


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


# ─── output ────────────────────────────────────────────────────────────────────────────────────────

def table(report: dict) -> str:
    gib = 2**30
    lines = [f"suite {report['suite']} ({report['resolution']} px) on {report['device']}, {report['dtype']}, "
             f"autocast {report['autocast']}, warm-up {report['warmup']}, repeats {report['repeats']}",
             "| measurement | seconds | steps measured / configured | s per step | peak memory | what |",
             "|---|---|---|---|---|---|"]
    for r in report["results"]:
        seconds = f"{'~' if r['extrapolated'] else ''}{r['seconds']:.3g}"
        if r["name"] == "generation":
            seconds += f" ({r['images_per_second']:.3g} img/s)"
        steps = f"{r['measured_steps']} / {r['config_steps']}" if r["config_steps"] else "–"
        per_step = f"{r['seconds_per_step']:.3g}" if "seconds_per_step" in r else "–"
        memory = f"{r['peak_memory_bytes'] / gib:.2f} GiB {'RSS' if r['memory_kind'] == 'cpu_rss' else 'CUDA'}"
        lines.append(f"| {r['name']} | {seconds} | {steps} | {per_step} | {memory} | {r['what']} |")
    lines.append("~ = extrapolated from the measured steps to the configured count (setup + steps x s/step + tail)")
    return "\n".join(lines)


def main(argv=None) -> dict:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    args = parse_args(argv)
    # Loading bars (one per repeat) would bury the table.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    report = run_suite(args)
    out = args.out or REPO / "out" / "bench" / "sd_scale" / f"{args.suite}-{report['device']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    if report.get("ticket"):
        print(ticket_table(report["ticket"]))
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
