"""`lethe`: the command line. Thin: parses arguments, calls components, prints for people.

Exit codes: 0 ok, 1 the job ran and failed, 2 an input (config, ticket, model path) is wrong. An
unexpected error is one line naming it and the log file with its traceback (exit code 1); `--debug`
(or LETHE_DEBUG=1) shows the traceback instead.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from components.erasure.methods import METHODS  # light (no torch): the --method help lists its keys
from pipelines import cluster_commands, release_commands, takedown_commands
from pipelines.cli_common import DEFAULT_CONFIG, REPO_ROOT, _fail_input, _load_config, console, err_console

app = typer.Typer(help="Lethe: erase a concept from a text-to-image model on a takedown ticket, prove it, audit it.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
world_app = typer.Typer(help="The toy world: a tiny self-trained SD pipeline, CLIP and detector.", no_args_is_help=True)
check_app = typer.Typer(help="Validate input files without running anything.", no_args_is_help=True)
app.add_typer(world_app, name="world")
app.add_typer(check_app, name="check")
_options = {"debug": False}


@app.callback()
def _global_options(debug: bool = typer.Option(False, "--debug", help="On an unexpected error, show its full "
                                               "traceback (also: LETHE_DEBUG=1).")) -> None:
    _options["debug"] = debug

# Telemetry off: Lethe runs in audited, often air-gapped environments.
for var in ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ.setdefault(var, "1")


def _admit(ticket: Path, cfg, config_path: Path):
    """Every check a door makes on a ticket with this config (components/takedown/admission.py); exit 2 on bad input."""
    from components.takedown.admission import admit
    from components.domain.file_errors import InputFileError
    from components.validation.image_validation import ImageValidationError

    try:
        return admit(ticket, cfg, config_path)
    except (InputFileError, ImageValidationError) as err:
        _fail_input(err)


def _load_model(config, step: str):
    """The model on the device of the pipeline step this command does the work of (its compute profile)."""
    from components.models.loading import ModelLoadError, load_pipeline
    from components.takedown.stages import model_device

    try:
        return load_pipeline(config.base_model.source, config.base_model.revision, model_device(config, step),
                             config.runtime.dtype, config.base_model.allow_download)
    except ModelLoadError as err:
        _fail_input(err)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "empty"


@check_app.command("config")
def check_config(path: Path = typer.Argument(..., help="A run config, e.g. configs/toy.yaml.")) -> None:
    """Validate a run config against the schema."""
    config = _load_config(path)
    console.print(f"[green]ok[/] {escape(str(path))}: config [bold]{config.name}[/], "
                  f"base model {escape(config.base_model.source)}, method {config.erasure.method}")


@check_app.command("ticket")
def check_ticket(path: Path = typer.Argument(..., help="A takedown ticket (YAML or JSON)."),
                 config: Path = typer.Option(DEFAULT_CONFIG, help="Run config the ticket is for: its base model, its "
                                             "detector, and the `validation` rules the images must meet.")) -> None:
    """Validate a takedown ticket and its images: the fields, the ticket against the run config (target model,
    a concept its detector can judge), then the image set (Great Expectations). What `lethe takedown` checks first."""
    cfg = _load_config(config)
    admitted = _admit(path, cfg, config)
    loaded, report = admitted.loaded, admitted.report
    t = loaded.ticket
    # Ticket text comes from outside: escape it so "[...]" in a concept name is printed, not parsed.
    console.print(f"[green]ok[/] {escape(str(path))}: ticket [bold]{t.ticket_id}[/], erase {t.kind.value} "
                  f"'{escape(t.concept)}' from {escape(t.target_model)}, {len(loaded.image_paths)} images "
                  f"pass {len(report.gx_result['results'])} image rules")


@app.command("schema")
def export_schema(out: Path = typer.Option(REPO_ROOT / "docs", help="Folder for the JSON Schema files.")) -> None:
    """Export the ticket, run-config and stack-config JSON Schemas (docs/*.schema.json)."""
    from components.config.run_config import write_run_config_schema
    from components.config.stack_config import write_stack_config_schema
    from components.domain.ticket import write_ticket_schema

    for written in (write_ticket_schema(out / "ticket.schema.json"), write_run_config_schema(out / "run-config.schema.json"),
                    write_stack_config_schema(out / "stack-config.schema.json")):
        console.print(f"wrote {written}")


@app.command()
def generate(prompt: str = typer.Argument(..., help='What to draw, e.g. "a red circle".'),
             config: Path = typer.Option(DEFAULT_CONFIG, help="Run config naming the base model and sampling."),
             n: int = typer.Option(4, min=1, help="How many images."),
             seed: int = typer.Option(0, help="Random seed (same seed, same images)."),
             out: Optional[Path] = typer.Option(None, help="PNG to write (default out/generate/<prompt>.png).")) -> None:
    """Generate images from the configured base model and save them as one labelled PNG strip."""
    import torch

    from components.evaluation.generation import sampling_kwargs, sampling_pipeline
    from components.evaluation.image_grid import Cell, labelled_grid

    cfg = _load_config(config)
    model = _load_model(cfg, "evaluate_adapter")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with console.status(f"generating {n} image(s) for {prompt!r} on {model.device}"):
        images = sampling_pipeline(model.pipeline, cfg.sampling)([prompt] * n, generator=generator, output_type="pil",
                                                                  **sampling_kwargs(cfg.sampling)).images
    labels = [""] * n
    if cfg.evaluation.detector.kind == "toy":
        from components.toyworld.detector import ConceptDetector

        detections = ConceptDetector.from_pretrained(cfg.evaluation.detector.path).detect(images)
        labels = [f"{d.colour} {d.shape}" for d in detections]
        console.print("detector: " + ", ".join(labels))
    out = out or Path("out") / "generate" / f"{_slug(prompt)}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    labelled_grid([(prompt, [Cell(im, lab) for im, lab in zip(images, labels)])]).save(out)
    console.print(f"wrote {out}")


@world_app.command("grid")
def world_grid(config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (the toy world by default)."),
               per_caption: int = typer.Option(4, min=1, help="Images per caption."),
               out: Path = typer.Option(Path("out") / "world-grid", help="Output folder.")) -> None:
    """Draw every toy-world caption and label each image with what the detector sees."""
    import numpy as np
    from rich.progress import Progress

    from components.evaluation.image_grid import Cell, labelled_grid
    from components.toyworld.detector import ConceptDetector
    from components.toyworld.fidelity import measure_fidelity
    from components.toyworld.shapes import all_captions

    cfg = _load_config(config)
    if cfg.evaluation.detector.kind != "toy":
        _fail_input(ValueError(f"{config}: evaluation.detector.kind: `lethe world grid` draws the toy world's captions and "
                               f"needs its detector (kind: toy), not {cfg.evaluation.detector.kind!r}"))
    model = _load_model(cfg, "evaluate_adapter")
    detector = ConceptDetector.from_pretrained(cfg.evaluation.detector.path)
    with Progress(console=console) as progress:
        task = progress.add_task("generating", total=len(all_captions()))
        fidelity = measure_fidelity(model.pipeline, detector, per_caption, seed=cfg.runtime.seed,
                                    steps=cfg.sampling.steps, guidance=cfg.sampling.guidance_scale, keep_images=True,
                                    on_caption=lambda caption: progress.update(task, advance=1, description=caption))
    rows = []
    for caption, samples in fidelity.samples.items():
        want = " ".join(caption.split()[-2:])
        rows.append((caption, [Cell(image, f"{d.colour} {d.shape}", f"{d.colour} {d.shape}" == want)
                               for image, d in samples]))
    hits = {caption: scores["both"] for caption, scores in fidelity.per_caption.items()}
    out.mkdir(parents=True, exist_ok=True)
    grid = labelled_grid(rows, title=f"toy world: {model.source} (sha256 {model.weights_sha256[:12]}), "
                                     "labels = detector (green: matches caption)")
    grid.save(out / "grid.png")
    (out / "detections.json").write_text(json.dumps(hits, indent=2) + "\n")
    table = Table(title="detector agrees with the caption")
    table.add_column("caption")
    table.add_column("match", justify="right")
    for caption, rate in hits.items():
        table.add_row(caption, f"{rate:.0%}")
    console.print(table)
    console.print(f"overall {np.mean(list(hits.values())):.0%}; wrote {out / 'grid.png'}")


def _resolve(ticket: Path, config: Path):
    """The run's inputs, as the pipeline's first step resolves them (the base model hashed once); exit 2 if the
    model cannot be found."""
    from components.models.loading import ModelLoadError
    from components.takedown.resolved_inputs import resolve_inputs
    from components.takedown.stages import run_key

    try:
        return resolve_inputs(ticket, config, run_key(ticket, config))
    except ModelLoadError as err:
        _fail_input(err)


@app.command("erase")
def erase_command(ticket: Path = typer.Argument(..., help="A takedown ticket (YAML or JSON)."),
                  config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (the toy world by default)."),
                  method: Optional[str] = typer.Option(None, help=f"Override erasure.method: {' | '.join(METHODS)}."),
                  out: Optional[Path] = typer.Option(None, help="Output folder (default: out/erase/<ticket_id>)."),
                  progress: bool = typer.Option(True, help="Show training progress bars.")) -> None:
    """Erase the ticket's concept with the configured method and save the result (no evaluation or registry yet).

    The pipeline's own stages (components/takedown/stages.py) do the work, with the same checks."""
    from components.takedown import stages

    cfg = _load_config(config)
    loaded = _admit(ticket, cfg, config).loaded  # the images it learns from pass the rules too
    if method is not None and method not in METHODS:
        _fail_input(ValueError(f"--method {method!r}: choose one of {', '.join(sorted(METHODS))}"))
    erasure = cfg.erasure.model_copy(update={"method": method or cfg.erasure.method})
    out = out or REPO_ROOT / "out" / "erase" / _slug(loaded.ticket.ticket_id)
    inputs = _resolve(ticket, config)
    token = None
    if erasure.method == "lora_ti":  # the pipeline's step 2: the token first, saved beside the adapter
        token = stages.learn_concept_token(inputs, progress=progress)
        token.save(out / "token")
    out.mkdir(parents=True, exist_ok=True)
    result = stages.train_unlearning(inputs, token, out, progress=progress, erasure=erasure)
    folder = result.save(out / "adapter")
    manifest = json.loads((folder / "lethe_erasure.json").read_text())
    console.print(f"[green]ok[/] {loaded.ticket.ticket_id}: erased '{escape(loaded.ticket.concept)}' with "
                  f"{erasure.method} in {result.wall_time_s:.1f} s, {len(result.changed_tensors())} tensors changed")
    for name, digest in manifest["files"].items():  # full hashes, never cut: they go into audit records
        console.print(f"  {escape(str(folder / name))}  sha256 {digest}", soft_wrap=True, highlight=False)


@app.command("evaluate")
def evaluate_command(ticket: Path = typer.Argument(..., help="The takedown ticket the adapter was made for."),
                     adapter: Path = typer.Option(None, help="A saved erasure result (default: out/erase/<ticket_id>/adapter, "
                                                  "as `lethe erase` writes it)."),
                     config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (the toy world by default)."),
                     out: Optional[Path] = typer.Option(None, help="Report folder (default: out/evaluate/<ticket_id>)."),
                     progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Evaluate a saved erasure: forget, retain, recovery attack; write report.html, grid.png, metrics.json.

    Prints each metric against the config's thresholds and the verdict the gate would reach."""
    from components.takedown import stages
    from components.erasure.result import ArtefactError
    from components.erasure.result_kinds import load_result
    from components.erasure.textual_inversion import LearnedToken
    from components.evaluation.decision import decide
    from components.evaluation.report import GRID_PNG, METRICS_JSON, REPORT_HTML
    from components.models.loading import ModelLoadError

    cfg = _load_config(config)
    loaded = _admit(ticket, cfg, config).loaded
    slug = _slug(loaded.ticket.ticket_id)
    adapter = adapter or REPO_ROOT / "out" / "erase" / slug / "adapter"
    try:
        result = load_result(adapter)
        token_dir = adapter.parent / "token"  # method A's token, learned on the original: the attack's control
        token = LearnedToken.load(token_dir) if token_dir.is_dir() else None
    except ArtefactError as err:
        _fail_input(err)
    inputs = _resolve(ticket, config)
    out = out or REPO_ROOT / "out" / "evaluate" / slug
    try:
        summary = stages.evaluate(inputs, token, result, out, progress=progress, identifiers={"adapter": str(adapter)})
    except ModelLoadError as err:
        _fail_input(err)
    decision = decide(summary.metrics, cfg.thresholds)
    for check in decision.checks:  # plain lines: a narrow terminal must not cut a number
        colour = "green" if check.passed else "red"
        console.print(f"[{colour}]{'pass' if check.passed else 'FAIL'}[/] {escape(check.reason)}", highlight=False)
    verdict = "[green]PASSED[/]" if decision.passed else "[red]REJECTED[/]"
    console.print(f"{verdict} {loaded.ticket.ticket_id}: report {escape(str(out / REPORT_HTML))}", soft_wrap=True,
                  highlight=False)
    console.print(f"  grid {escape(str(out / GRID_PNG))}, metrics {escape(str(out / METRICS_JSON))}", soft_wrap=True,
                  highlight=False)


@world_app.command("build")
def world_build(out: Path = typer.Option(None, help="Where to write the world (default: assets/toyworld)."),
                work_dir: Path = typer.Option(None, help="Stage cache; an interrupted build resumes from it."),
                scale: float = typer.Option(1.0, min=0.0001, max=1.0,
                                            help="Shrink every stage (for smoke tests; 1.0 = the shipped world).")) -> None:
    """Regenerate the toy world (detector, CLIP, VAE, U-Net + text encoder) from fixed seeds."""
    import time

    from components.toyworld.build import BuildPlan, build_world
    from components.toyworld.world import ASSETS_DIR

    plan = BuildPlan() if scale == 1.0 else BuildPlan().scaled(scale)
    out = out or ASSETS_DIR
    t0 = time.perf_counter()
    def log(message: str) -> None:  # stage names look like markup ("[vae]"): print them as plain text
        console.print(f"{time.strftime('%H:%M:%S')} {message}", markup=False, highlight=False)

    manifest = build_world(out, work_dir, plan, log=log)
    _print_world(manifest)
    console.print(f"built in {time.perf_counter() - t0:.0f} s; wrote {out}")


@world_app.command("measure")
def world_measure(world: Path = typer.Option(None, help="World folder (default: assets/toyworld)."),
                  per_caption: int = typer.Option(32, min=1, help="Generated images per caption.")) -> None:
    """Measure the toy world's quality bar: prompt fidelity, detector and CLIP accuracy."""
    from components.toyworld.build import measure_world
    from components.toyworld.world import ASSETS_DIR

    _print_world(measure_world(world or ASSETS_DIR, per_caption,
                               log=lambda m: console.print(m, markup=False, highlight=False)))


def _print_world(manifest: dict) -> None:
    f = manifest["fidelity"]
    table = Table(title="toy world quality")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("generated: shape accuracy", f"{f['shape_accuracy']:.1%}")
    table.add_row("generated: colour accuracy", f"{f['colour_accuracy']:.1%}")
    table.add_row(f"generated: worst caption ({f['worst_caption']})", f"{f['worst_caption_accuracy']:.1%}")
    table.add_row("detector: held-out shape accuracy", f"{manifest['detector']['shape_accuracy']:.1%}")
    table.add_row("detector: held-out colour accuracy", f"{manifest['detector']['colour_accuracy']:.1%}")
    table.add_row("CLIP: zero-shot accuracy", f"{manifest['clip_zero_shot_accuracy']:.1%}")
    console.print(table)


takedown_commands.add_commands(app)  # takedown, demo, sweep, audit
cluster_commands.add_commands(app)  # stack, submit, schedule
release_commands.add_commands(app)  # withdraw, release show|rollback|rebuild|export


def _traceback_log() -> Path | None:
    """Write the current exception's traceback to $LETHE_HOME/logs (else the temp folder); its path."""
    import tempfile
    import time
    import traceback

    from steps.work_folder import lethe_home

    text = f"lethe {' '.join(sys.argv[1:])}\n{traceback.format_exc()}"
    for folder in (lethe_home() / "logs", Path(tempfile.gettempdir()) / "lethe-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log = folder / f"lethe-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            log.write_text(text)
            return log
        except OSError:
            continue
    return None


def main() -> None:
    """The `lethe` entry point: the app, with a guard that turns an unexpected error into one line (exit 1)."""
    try:
        app()
    except Exception as err:  # noqa: BLE001 - the last guard: whatever went wrong, people get one line, not a traceback
        if _options["debug"] or "--debug" in sys.argv[1:] or os.environ.get("LETHE_DEBUG", "") not in ("", "0"):
            raise
        log = _traceback_log()
        message = " ".join(str(err).split()) or "(no message)"
        where = f"traceback: {log}" if log else "the traceback could not be written"
        err_console.print(f"error: {type(err).__name__}: {message} ({where}); run again with --debug to see it here",
                          markup=False, highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
