"""One takedown, stage by stage, as plain functions over typed objects: what the pipeline steps, the CLI's
`erase` and `evaluate` and the benchmarks all call, so each stage and its invariants exist once.

The first stage resolves the run's inputs (ticket, config, the base model's identity with its weights
hash, taken once); every later stage takes them. Stages return their outputs (LearnedToken, ErasureResult,
EvaluationSummary, RegisteredVersion, Decision); `work` is scratch space for one process (a report being
written, a marker that training began), never the way one stage hands anything to the next.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..evaluation.decision import decide, limits_of
from ..domain.hashing import file_sha256
from ..validation.image_validation import ImageValidationError, validate_images
from .resolved_inputs import ResolvedInputs, resolve_inputs
from ..config.run_config import RunConfig, load_run_config
from .batch import EvaluationSummary
from ..domain.ticket import LoadedTicket, load_ticket

VALIDATION_JSON = "validation.json"
TRAINING_STARTED_JSON = "training_started.json"


def run_key(ticket_path: str | Path, config_path: str | Path) -> str:
    """Identifies a takedown's inputs: the ticket file, its images and the run config by content, and the
    base model's files by name, size and mtime (cheap; a changed model must not hit an old run's cache)."""
    from ..models.loading import ModelLoadError, files_fingerprint, resolve_folder

    loaded, config = load_ticket(ticket_path), load_run_config(config_path)
    b = config.base_model
    try:
        base = files_fingerprint(resolve_folder(b.source, b.revision, b.allow_download))
    except ModelLoadError:
        base = "unresolved"  # the first step resolves it again and says what is wrong
    digest = hashlib.sha256()
    for part in (loaded.sha256, *(file_sha256(p) for p in loaded.image_paths), file_sha256(Path(config_path)), base):
        digest.update(part.encode())
    return digest.hexdigest()


def validate(ticket_path: str | Path, config_path: str | Path, work: Path) -> dict:
    """Stage 1: the ticket schema and the GX image suite; raises on failure. The record carries the full
    validation report (it is registered with the version), and a copy is written to work/validation.json."""
    loaded, config = load_ticket(ticket_path), load_run_config(config_path)
    from .admission import check_ticket_meets_config  # the ticket against this config: every door's checks

    check_ticket_meets_config(loaded, config, config_path, ticket_path)
    report = validate_images(loaded.image_paths, list(loaded.ticket.images), config.validation, ticket_path)
    report.write(work / VALIDATION_JSON)
    if not report.success:
        raise ImageValidationError(report)
    return {"ticket_id": loaded.ticket.ticket_id, "ticket_sha256": loaded.sha256,
            "images": {f.path: f.sha256 for f in report.facts},
            "report": json.loads((work / VALIDATION_JSON).read_text())}


def validate_and_resolve(ticket_path: str | Path, config_path: str | Path, key: str,
                         work: Path) -> tuple[ResolvedInputs, dict]:
    """Stage 1 and the run's inputs: only a ticket that passed is resolved (the base model hashed, once)."""
    validation = validate(ticket_path, config_path, work)
    return resolve_inputs(ticket_path, config_path, key), validation


# The stages that load the model, by their takedown step's name: each loads it on its step's compute profile's
# device, so a step asks only for the device its pod was given (components/config/cluster_placement.py).
MODEL_STEPS = ("learn_concept_token", "train_unlearning", "evaluate_adapter", "release")


def model_device(config: RunConfig, step: str) -> str | None:
    """The device a takedown step's code loads the model on; None: the step loads no model."""
    profile = config.compute.profile(step)  # a name that is no takedown step raises
    return profile.device if step in MODEL_STEPS else None


def stage_model(inputs: ResolvedInputs, config: RunConfig, step: str):
    """The base model for a stage, on its step's device: loaded once per process, its weights not hashed again
    (only checked unchanged since the run resolved them). Stages read it and never change it in place."""
    if step not in MODEL_STEPS:
        raise ValueError(f"step {step!r} loads no model (MODEL_STEPS): its pod may have no device for one")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from ..models.loading import shared_pipeline

    # Each step loads the model; their loading bars would bury the pipeline's own step-by-step output.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    return shared_pipeline(inputs.base.identity(), model_device(config, step), config.runtime.dtype)


def learn_concept_token(inputs: ResolvedInputs, progress: bool = False):
    """Stage 2: textual inversion on the original model (a LearnedToken); every method's evaluation reuses the
    token as the recovery attack's control, and method A erases through it. learn_token refuses a non-finite one."""
    from ..erasure.request import ErasureRequest
    from ..erasure.textual_inversion import learn_token

    loaded, config = inputs.ticket(), inputs.config()
    model = stage_model(inputs, config, "learn_concept_token")
    return learn_token(model.pipeline, ErasureRequest.from_ticket(loaded).concept, loaded.image_paths,
                       config.erasure.textual_inversion, seed=config.runtime.seed, progress=progress)


def request_for(loaded: LoadedTicket, config: RunConfig, token=None):
    """The ticket as an erasure request, with the evaluation's prompt sets in it: training erases every way
    of asking that is measured and keeps the retain corpus' training part (never its held-out part)."""
    from ..erasure.request import ErasureRequest
    from ..evaluation.prompt_sets import with_prompt_sets

    request = ErasureRequest.from_ticket(loaded, seed=config.runtime.seed, learned_token=token)
    return with_prompt_sets(request, config.evaluation)


def train_unlearning(inputs: ResolvedInputs, token, work: Path, progress: bool = False, erasure=None, start=None):
    """Stage 3: the configured erasure method (an ErasureResult; erase() refuses one with non-finite weights).
    `erasure` overrides the config's erasure settings (the CLI's --method); `start`, the production release to train
    on top of (training_start below), or None: the base model."""
    from ..erasure.methods import erase
    from ..erasure.starting_point import label_of

    loaded, config = inputs.ticket(), inputs.config()
    erasure = erasure or config.erasure
    model = stage_model(inputs, config, "train_unlearning")
    # A record that training began: a run that dies here leaves it, and no result, behind.
    (work / TRAINING_STARTED_JSON).write_text(json.dumps({
        "method": erasure.method, "base_weights_sha256": model.weights_sha256,
        "trained_on": label_of(start)}) + "\n")
    return erase(model.pipeline, request_for(loaded, config, token), erasure, progress=progress, start=start)


def training_start(inputs: ResolvedInputs, registry):
    """Where this ticket's takedown is trained from: the production release (a StartingPoint) for the methods that
    train on top of it (erasure.methods.TRAINS_ON_PRODUCTION), else None (the base model). The release stage later
    composes the takedown onto production as it is then, and verifies that."""
    from ..erasure.methods import TRAINS_ON_PRODUCTION
    from ..release.training_start import production_start

    config = inputs.config()
    if config.erasure.method not in TRAINS_ON_PRODUCTION:
        return None
    return production_start(registry, config.base_model.registry_name, inputs.base.weights_sha256)


def evaluate(inputs: ResolvedInputs, token, result, report_dir: Path, progress: bool = False,
             cache_folder: Path | None = None, identifiers: dict | None = None) -> EvaluationSummary:
    """Stage 4: metrics and the report (report.html, grid.png, metrics.json, the attack's token) in `report_dir`;
    the original model's images come from `cache_folder` when they were drawn before (image_cache)."""
    from ..evaluation.evaluate import evaluate_result
    from ..evaluation.report import identifiers_for, write_report

    loaded, config = inputs.ticket(), inputs.config()
    model = stage_model(inputs, config, "evaluate_adapter")
    evaluation = evaluate_result(model, result, request_for(loaded, config, token), config, progress=progress,
                                 cache_folder=cache_folder)
    decision = decide(evaluation.metrics, config.thresholds)
    files = write_report(evaluation, decision, identifiers_for(loaded.ticket, model, result, identifiers),
                         report_dir, title=f"Lethe erasure report: {loaded.ticket.ticket_id}, '{loaded.ticket.concept}'",
                         thresholds=limits_of(config.thresholds),
                         images_per_prompt=config.evaluation.report_images_per_prompt)
    if evaluation.attack_token is not None:
        evaluation.attack_token.save(files.html.parent / "attack_token")  # registered with the report
    return EvaluationSummary(metrics=evaluation.metrics, report_dir=files.html.parent)


def resolved_config_file(config_path: str | Path, work: Path) -> Path:
    """The config as it was resolved (paths absolute, defaults filled): what actually ran."""
    config = load_run_config(config_path)
    out = work / "resolved_config.json"
    out.write_text(json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    return out


def register(inputs: ResolvedInputs, token, result, evaluation: EvaluationSummary, validation: dict, work: Path,
             registry, run_id: str | None = None):
    """Stage 5: a pending registry version with every artefact and the lineage tags (a RegisteredVersion).
    `work`: where the artefacts are written for the upload."""
    from ..registry.lineage import lineage_tags

    work.mkdir(parents=True, exist_ok=True)
    loaded, config = inputs.ticket(), inputs.config()
    model = inputs.base.identity()  # as the run resolved it: the weights every stage used, hashed once
    tags = lineage_tags(loaded, model, result, evaluation.metrics, config.name, run_id)
    sets = json.loads((evaluation.report_dir / "metrics.json").read_text())["info"].get("prompt_sets", {})
    # what the evaluation measured, and every prompt dropped for naming the concept: part of the audit trail
    tags["evaluation_sets"] = json.dumps({k: len(sets.get(k, [])) for k in ("forget", "retain", "neighbours", "paraphrases")}
                                         | {"corpus": sets.get("corpus", {})}, sort_keys=True)
    tags["evaluation_removed_prompts"] = json.dumps(sets.get("removed", []), sort_keys=True)
    (work / VALIDATION_JSON).write_text(json.dumps(validation["report"], indent=2, sort_keys=True) + "\n")
    artefacts = {"adapter": result.save(work / "adapter"), "token": token.save(work / "token"),
                 "report": evaluation.report_dir, "validation": work / VALIDATION_JSON,
                 "config": resolved_config_file(inputs.config_path, work), "ticket": loaded.path}
    return registry.register(config.base_model.registry_name, artefacts, tags, evaluation.metrics,
                             run_name=loaded.ticket.ticket_id,
                             description=f"erase {loaded.ticket.kind.value} '{loaded.ticket.concept}' "
                                         f"(ticket {loaded.ticket.ticket_id}) with {result.method}")


def gate(version, metrics: dict, ticket_id: str, config: RunConfig, registry, aliases: tuple[str, ...] = ()):
    """Stage 6: approve the ticket's version (its `ticket-<id>` alias) only on a passing decision; otherwise tag it
    rejected. What is served is decided by the release stage (releasing.py): `production` on the release model."""
    from ..registry.model_registry import alias_for_ticket

    decision = decide(metrics, config.thresholds)
    checks = [c.reason for c in decision.checks]
    if decision.passed:
        registry.promote(version, [*aliases, alias_for_ticket(ticket_id)], checks)
    else:
        registry.reject(version, decision.reasons, checks)
    return decision
