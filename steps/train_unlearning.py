from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown import stages
from components.takedown.batch import TakedownBatch, advance
from steps.materializers import TakedownBatchMaterializer
from steps.registry_target import active_registry
from steps.work_folder import work_folder


@step(output_materializers=TakedownBatchMaterializer)
def train_unlearning(tickets: TakedownBatch) -> Annotated[TakedownBatch, "with_results"]:
    """The configured erasure method (on clusters its compute profile places it: see the run config's `compute`),
    trained on top of the production release where the method does (stages.training_start). Every ticket of a sweep
    starts from the same production; their one candidate release is verified with all of them together."""
    registry = active_registry()
    return advance(tickets, "train_unlearning", lambda run: {"result": stages.train_unlearning(
        run.inputs, run.token, work_folder(run.ticket_id, run.run_key), progress=True,
        start=stages.training_start(run.inputs, registry))})
