"""Run the takedown pipeline (one ticket) or the sweep pipeline (an inbox) on the active stack, and collect
what the gate decided from the pipeline's own outcome artefact."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.local_stack import configure_environment


class StepFailed(RuntimeError):
    """A pipeline step raised. ZenML reports only "failed due to failure in step(s)"; this names the step and
    carries the step's own error (from the run's records), and whether it was the input's fault."""

    def __init__(self, step: str, error_type: str, message: str):
        from components.domain.file_errors import INPUT_ERROR_TYPES

        self.step, self.error_type, self.message = step, error_type, message
        self.bad_input = error_type in INPUT_ERROR_TYPES
        super().__init__(f"step {step} failed: {error_type}: {message}")


def _failed_step(pipeline_name: str) -> StepFailed | None:
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

    runs = Client().list_pipeline_runs(pipeline_name=pipeline_name, sort_by="desc:created", size=1, hydrate=True)
    for run in runs.items:
        for name, step in run.steps.items():
            if step.status == ExecutionStatus.FAILED and step.exception_info is not None:
                info = step.exception_info
                return StepFailed(name, (info.source or "error").rsplit(".", 1)[-1], info.message or info.traceback)
    return None


@dataclass
class TakedownOutcome:
    ticket_id: str
    run_name: str
    decision: dict  # Decision.as_dict()
    version: dict  # registered name, version, MLflow run id, source
    metrics: dict
    report_dir: str  # a local copy of the report, under the Lethe home
    stack: str
    release: dict | None = None  # the candidate release it went into (None: the gate rejected the ticket)

    @property
    def promoted(self) -> bool:
        """The ticket passed its gate and the release holding it is production."""
        return bool(self.decision["passed"] and self.release and self.release["promoted"])


def _prepare(stack_config):
    """The stack active and the registry reachable, before any training: a run that cannot register must not start."""
    _check_tracking_server()
    from pipelines.stack_activation import activate

    stack = activate(stack_config)
    from steps.registry_target import active_registry

    active_registry().check_reachable()
    return stack


def run_takedown(ticket_path: str | Path, config_path: str | Path, run_name: str | None = None,
                 stack_config=None) -> TakedownOutcome:
    """Raises InputFileError / ImageValidationError for bad input (every check of components/takedown/admission.py)
    before anything runs: no pipeline run, no registry, no version. Raises StepFailed (naming the step and
    its error: TrainingDiverged, RegistryUnavailable, ...) when a step fails. `stack_config` (a StackConfig;
    None: the embedded local stack) says where the steps run."""
    import os

    from components.takedown.admission import admit
    from components.config.run_config import load_run_config

    from pipelines.stack_activation import pipeline_options, require_on_shared_volume, require_placeable

    config = load_run_config(config_path)
    require_placeable(config, config_path, stack_config)
    loaded = admit(ticket_path, config, config_path).loaded  # the pipeline's validate step records it again
    configure_environment()
    from components.takedown import stages

    # realpath, unlike Path.resolve, never raises (a symlink loop is refused above as unreadable).
    ticket_path, config_path = Path(os.path.realpath(ticket_path)), Path(os.path.realpath(config_path))
    require_on_shared_volume(ticket_path, stack_config)
    stack = _prepare(stack_config)
    from pipelines.takedown_pipeline import STAGES, takedown_pipeline

    key = stages.run_key(ticket_path, config_path)
    name = run_name or f"takedown-{loaded.ticket.ticket_id}-{{date}}-{{time}}"
    try:
        options = pipeline_options(config, stack_config, STAGES)
        run = takedown_pipeline.with_options(run_name=name, **options)(
            ticket_path=str(ticket_path), config_path=str(config_path), ticket_id=loaded.ticket.ticket_id, run_key=key)
    except RuntimeError as err:
        raise (_failed_step(takedown_pipeline.name) or err) from err
    (ticket,) = run.steps["release"].outputs["released"][0].load().runs
    return outcome_of(ticket, run.name, stack)


def outcome_of(ticket, run_name: str, stack: str) -> TakedownOutcome:
    """A gated ticket (takedown.batch.TicketRun) as the CLI shows it; its report copied under the Lethe home."""
    from dataclasses import asdict

    from steps.work_folder import lethe_home

    report = lethe_home() / "reports" / f"{ticket.ticket_id}-{ticket.run_key[:16]}"
    shutil.copytree(ticket.evaluation.report_dir, report, dirs_exist_ok=True)
    return TakedownOutcome(ticket_id=ticket.ticket_id, run_name=run_name, decision=ticket.decision.as_dict(),
                           version=asdict(ticket.version), metrics=ticket.evaluation.metrics, report_dir=str(report),
                           stack=stack, release=ticket.release)


def run_sweep(inbox: str, config_path: str | Path, stack_config=None):
    """The sweep pipeline over `inbox`: its release step's outcome batch (every ticket: promoted, rejected, skipped, or
    failed with its error), whether or not the run was flagged failed at the end."""
    import os

    from components.config.run_config import load_run_config

    from pipelines.stack_activation import pipeline_options, require_placeable

    config = load_run_config(config_path)
    require_placeable(config, config_path, stack_config)
    configure_environment()
    config_path = Path(os.path.realpath(config_path))
    stack = _prepare(stack_config)
    from zenml.client import Client

    from pipelines.sweep_pipeline import STAGES, sweep_pipeline

    try:
        sweep_pipeline.with_options(run_name="sweep-{date}-{time}", **pipeline_options(config, stack_config, STAGES))(
            inbox=inbox, config_path=str(config_path))
    except RuntimeError as err:
        failed = _failed_step(sweep_pipeline.name)
        if failed is None or failed.step != "flag_failures":
            raise (failed or err) from err
    run = Client().list_pipeline_runs(pipeline_name=sweep_pipeline.name, sort_by="desc:created", size=1,
                                      hydrate=True).items[0]
    return run.steps["release"].outputs["released"][0].load(), run.name, stack


def _check_tracking_server() -> None:
    """A configured MLflow server must answer before the stack is built on it."""
    import os

    uri = os.environ.get("LETHE_MLFLOW_TRACKING_URI")
    if uri:
        from components.registry.model_registry import AdapterRegistry

        AdapterRegistry(uri).check_reachable()


def registry_for_stack(stack_config=None):
    """The AdapterRegistry of the given stack config's stack (None: the embedded one), for sweeps and audits."""
    from pipelines.stack_activation import activate

    configure_environment()
    _check_tracking_server()
    activate(stack_config)
    from steps.registry_target import active_registry

    return active_registry()
