from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, step

from components import takedown
from components.resolved_inputs import ResolvedInputs
from steps.registry_target import active_registry
from steps.work_folder import work_folder


@step(enable_cache=False)  # a side effect: every run that reaches it registers exactly one version
def register_adapter(inputs: ResolvedInputs, token_dir: str, adapter_dir: str,
                     evaluation: dict) -> Annotated[dict, "registered_version"]:
    """A pending version in the MLflow registry with the artefacts and the lineage tags."""
    run_id = str(get_step_context().pipeline_run.id)
    version = takedown.register(inputs, token_dir, adapter_dir, evaluation["report_dir"], evaluation["metrics"],
                                work_folder(inputs.ticket_id, inputs.run_key), active_registry(), run_id)
    return {"name": version.name, "version": version.version, "run_id": version.run_id, "source": version.source}
