from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, step

from components.takedown import stages
from components.takedown.batch import TakedownBatch, advance
from steps.materializers import TakedownBatchMaterializer
from steps.registry_target import active_registry
from steps.work_folder import work_folder


@step(enable_cache=False, output_materializers=TakedownBatchMaterializer)  # a side effect: one version per ticket and run
def register_adapter(tickets: TakedownBatch) -> Annotated[TakedownBatch, "registered"]:
    """A pending version in the MLflow registry with the artefacts and the lineage tags, for each ticket."""
    run_id, registry = str(get_step_context().pipeline_run.id), active_registry()
    return advance(tickets, "register_adapter", lambda run: {"version": stages.register(
        run.inputs, run.token, run.result, run.evaluation, run.validation,
        work_folder(run.ticket_id, run.run_key) / "register", registry, run_id)})
