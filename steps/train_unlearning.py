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
    registry, starts = active_registry(), {}

    def start_for(run):  # production is read (downloaded, hashed) once per step, not once per ticket
        config = run.inputs.config()
        key = (config.base_model.registry_name, run.inputs.base.weights_sha256, config.erasure.method)
        if key not in starts:
            starts[key] = stages.training_start(run.inputs, registry)
        return starts[key]

    return advance(tickets, "train_unlearning", lambda run: {"result": stages.train_unlearning(
        run.inputs, run.token, work_folder(run.ticket_id, run.run_key), progress=True, start=start_for(run))})
