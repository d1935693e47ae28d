"""One takedown, stage by stage, as plain functions: what the pipeline's steps call.

Every stage after the first takes the run's ResolvedInputs (ticket, config, base model identity with
its weights hash, resolved once). Each writes its outputs into the run's work folder, so a step that
ZenML takes from its cache still points at real files, and every stage can be run and tested without
ZenML. The work folder is keyed by the ticket's, the config's and the base model files' fingerprints.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .evaluation.decision import decide, limits_of
from .hashing import file_sha256
from .image_validation import ImageValidationError, validate_images
from .resolved_inputs import ResolvedInputs, resolve_inputs
from .run_config import RunConfig, load_run_config
from .ticket import LoadedTicket, load_ticket

VALIDATION_JSON = "validation.json"


def run_key(ticket_path: str | Path, config_path: str | Path) -> str:
    """Identifies a takedown's inputs: the ticket file, its images and the run config by content, and the
    base model's files by name, size and mtime (cheap; a changed model must not hit an old run's cache)."""
    from .model_loading import ModelLoadError, files_fingerprint, resolve_folder

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


def load_inputs(ticket_path: str | Path, config_path: str | Path) -> tuple[LoadedTicket, RunConfig]:
    return load_ticket(ticket_path), load_run_config(config_path)


def validate(ticket_path: str | Path, config_path: str | Path, work: Path) -> dict:
    """Stage 1: the ticket schema and the GX image suite. Writes validation.json; raises on failure."""
    loaded, config = load_inputs(ticket_path, config_path)
    from .admission import check_ticket_meets_config  # the ticket against this config: every door's checks

    check_ticket_meets_config(loaded, config, config_path, ticket_path)
    report = validate_images(loaded.image_paths, list(loaded.ticket.images), config.validation, ticket_path)
    report.write(work / VALIDATION_JSON)
    if not report.success:
        raise ImageValidationError(report)
    return {"ticket_id": loaded.ticket.ticket_id, "ticket_sha256": loaded.sha256,
            "images": {f.path: f.sha256 for f in report.facts}, "validation_file": str(work / VALIDATION_JSON)}


def validate_and_resolve(ticket_path: str | Path, config_path: str | Path, key: str,
                         work: Path) -> tuple[ResolvedInputs, dict]:
    """Stage 1 and the run's inputs: only a ticket that passed is resolved (the base model hashed, once)."""
    validation = validate(ticket_path, config_path, work)
    return resolve_inputs(ticket_path, config_path, key), validation


# The stages that load the model, by their takedown step's name: each loads it on its step's compute profile's
# device, so a step asks only for the device its pod was given (components/cluster_placement.py).
MODEL_STEPS = ("learn_concept_token", "train_unlearning", "evaluate_adapter")


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

    from .model_loading import shared_pipeline

    # Each step loads the model; their loading bars would bury the pipeline's own step-by-step output.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    return shared_pipeline(inputs.base.identity(), model_device(config, step), config.runtime.dtype)


def learn_concept_token(inputs: ResolvedInputs, work: Path, progress: bool = False) -> str:
    """Stage 2: textual inversion on the original model; every method's evaluation reuses the token as
    the recovery attack's control, and method A erases through it."""
    from .erasure.request import ErasureRequest
    from .erasure.textual_inversion import learn_token

    loaded, config = inputs.ticket(), inputs.config()
    model = stage_model(inputs, config, "learn_concept_token")
    token = learn_token(model.pipeline, ErasureRequest.from_ticket(loaded).concept, loaded.image_paths,
                        config.erasure.textual_inversion, seed=config.runtime.seed, progress=progress)
    return str(token.save(work / "token"))


def request_for(loaded: LoadedTicket, config: RunConfig, token_dir: str | Path | None):
    """The ticket as an erasure request, with the evaluation's prompt sets in it: training erases every way
    of asking that is measured and keeps the retain corpus' training part (never its held-out part)."""
    from .erasure.request import ErasureRequest
    from .erasure.textual_inversion import LearnedToken
    from .evaluation.prompt_sets import with_prompt_sets

    token = LearnedToken.load(token_dir) if token_dir else None
    request = ErasureRequest.from_ticket(loaded, seed=config.runtime.seed, learned_token=token)
    return with_prompt_sets(request, config.evaluation)


def train_unlearning(inputs: ResolvedInputs, token_dir: str, work: Path, progress: bool = False) -> str:
    """Stage 3: the configured erasure method (erase() refuses a result with non-finite weights)."""
    from .erasure.methods import erase

    loaded, config = inputs.ticket(), inputs.config()
    model = stage_model(inputs, config, "train_unlearning")
    # A record that training began: a run that dies here leaves it, and no adapter, behind.
    (work / "training_started.json").write_text(json.dumps({"method": config.erasure.method,
                                                            "base_weights_sha256": model.weights_sha256}) + "\n")
    result = erase(model.pipeline, request_for(loaded, config, token_dir), config.erasure, progress=progress)
    return str(result.save(work / "adapter"))


def evaluate(inputs: ResolvedInputs, token_dir: str, adapter_dir: str, work: Path, progress: bool = False,
             cache_folder: Path | None = None) -> dict:
    """Stage 4: metrics and the report (report.html, grid.png, metrics.json) in work/report; the original
    model's images come from `cache_folder` when they were drawn before (image_cache)."""
    from .erasure.result_kinds import load_result
    from .evaluation.evaluate import evaluate_result
    from .evaluation.report import identifiers_for, write_report

    loaded, config = inputs.ticket(), inputs.config()
    model = stage_model(inputs, config, "evaluate_adapter")
    result = load_result(adapter_dir)
    evaluation = evaluate_result(model, result, request_for(loaded, config, token_dir), config, progress=progress,
                                 cache_folder=cache_folder)
    decision = decide(evaluation.metrics, config.thresholds)
    files = write_report(evaluation, decision, identifiers_for(loaded.ticket, model, result), work / "report",
                         title=f"Lethe erasure report: {loaded.ticket.ticket_id}, '{loaded.ticket.concept}'",
                         thresholds=limits_of(config.thresholds),
                         images_per_prompt=config.evaluation.report_images_per_prompt)
    if evaluation.attack_token is not None:
        evaluation.attack_token.save(work / "attack_token")
    return {"metrics": evaluation.metrics, "report_dir": str(files.html.parent)}


def resolved_config_file(config_path: str | Path, work: Path) -> Path:
    """The config as it was resolved (paths absolute, defaults filled): what actually ran."""
    config = load_run_config(config_path)
    out = work / "resolved_config.json"
    out.write_text(json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    return out


def register(inputs: ResolvedInputs, token_dir: str, adapter_dir: str, report_dir: str, metrics: dict, work: Path,
               registry, run_id: str | None = None):
    """Stage 5: a pending registry version with every artefact and the lineage tags."""
    from .erasure.result_kinds import load_result
    from .lineage import lineage_tags

    loaded, config = inputs.ticket(), inputs.config()
    model = inputs.base.identity()  # as the run resolved it: the weights every stage used, hashed once
    result = load_result(adapter_dir)
    tags = lineage_tags(loaded, model, result, metrics, config.name, run_id)
    sets = json.loads((Path(report_dir) / "metrics.json").read_text())["info"].get("prompt_sets", {})
    # what the evaluation measured, and every prompt dropped for naming the concept: part of the audit trail
    tags["evaluation_sets"] = json.dumps({k: len(sets.get(k, [])) for k in ("forget", "retain", "neighbours", "paraphrases")}
                                         | {"corpus": sets.get("corpus", {})}, sort_keys=True)
    tags["evaluation_removed_prompts"] = json.dumps(sets.get("removed", []), sort_keys=True)
    artefacts = {"adapter": Path(adapter_dir), "token": Path(token_dir), "report": Path(report_dir),
                 "validation": work / VALIDATION_JSON, "config": resolved_config_file(inputs.config_path, work),
                 "ticket": loaded.path}
    return registry.register(config.base_model.registry_name, artefacts, tags, metrics, run_name=loaded.ticket.ticket_id,
                             description=f"erase {loaded.ticket.kind.value} '{loaded.ticket.concept}' "
                                         f"(ticket {loaded.ticket.ticket_id}) with {result.method}")


def gate(version, metrics: dict, ticket_id: str, config: RunConfig, registry, aliases: tuple[str, ...] = ("champion",)):
    """Stage 6: promote (aliases) only on a passing decision; otherwise tag the version rejected."""
    from .registry import alias_for_ticket

    decision = decide(metrics, config.thresholds)
    checks = [c.reason for c in decision.checks]
    if decision.passed:
        registry.promote(version, [*aliases, alias_for_ticket(ticket_id)], checks)
    else:
        registry.reject(version, decision.reasons, checks)
    return decision
