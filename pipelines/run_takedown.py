"""Run one ticket through the takedown pipeline on the active stack and collect what the gate decided."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.local_stack import configure_environment


class StepFailed(RuntimeError):
    """A pipeline step raised. ZenML reports only "failed due to failure in step(s)"; this names the step and
    carries the step's own error (from the run's records), and whether it was the input's fault."""

    def __init__(self, step: str, error_type: str, message: str):
        from components.file_errors import INPUT_ERROR_TYPES

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
    report_dir: str
    stack: str


def run_takedown(ticket_path: str | Path, config_path: str | Path, run_name: str | None = None,
                 stack_config=None) -> TakedownOutcome:
    """Raises InputFileError / ImageValidationError for bad input (every check of components/admission.py)
    before anything runs: no pipeline run, no registry, no version. Raises StepFailed (naming the step and
    its error: TrainingDiverged, RegistryUnavailable, ...) when a step fails. `stack_config` (a StackConfig;
    None: the embedded local stack) says where the steps run."""
    import os

    from components.admission import admit
    from components.run_config import load_run_config

    config = load_run_config(config_path)
    loaded = admit(ticket_path, config, config_path).loaded  # the pipeline's validate step records it again
    configure_environment()
    from components import takedown
    from pipelines.stack_activation import activate, pipeline_options, require_on_shared_volume

    # realpath, unlike Path.resolve, never raises (a symlink loop is refused above as unreadable).
    ticket_path, config_path = Path(os.path.realpath(ticket_path)), Path(os.path.realpath(config_path))
    require_on_shared_volume(ticket_path, stack_config)
    _check_tracking_server()
    stack = activate(stack_config)
    from steps.registry_target import active_registry

    active_registry().check_reachable()  # before any training: a run that cannot register must not start
    from pipelines.takedown_pipeline import STAGES, takedown_pipeline

    key = takedown.run_key(ticket_path, config_path)
    name = run_name or f"takedown-{loaded.ticket.ticket_id}-{{date}}-{{time}}"
    try:
        options = pipeline_options(config, stack_config, STAGES)
        run = takedown_pipeline.with_options(run_name=name, **options)(
            ticket_path=str(ticket_path), config_path=str(config_path), ticket_id=loaded.ticket.ticket_id, run_key=key)
    except RuntimeError as err:
        raise (_failed_step(takedown_pipeline.name) or err) from err
    steps = run.steps
    evaluation = steps["evaluate_adapter"].outputs["evaluation"][0].load()
    return TakedownOutcome(ticket_id=loaded.ticket.ticket_id, run_name=run.name,
                           decision=steps["gate"].outputs["decision"][0].load(),
                           version=steps["register_adapter"].outputs["registered_version"][0].load(),
                           metrics=evaluation["metrics"], report_dir=evaluation["report_dir"], stack=stack)


def _check_tracking_server() -> None:
    """A configured MLflow server must answer before the stack is built on it."""
    import os

    uri = os.environ.get("LETHE_MLFLOW_TRACKING_URI")
    if uri:
        from components.registry import AdapterRegistry

        AdapterRegistry(uri).check_reachable()


def registry_for_stack(stack_config=None):
    """The AdapterRegistry of the given stack config's stack (None: the embedded one), for sweeps and audits."""
    from pipelines.stack_activation import activate

    configure_environment()
    _check_tracking_server()
    activate(stack_config)
    from steps.registry_target import active_registry

    return active_registry()
