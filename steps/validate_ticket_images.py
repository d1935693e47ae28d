from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown import stages
from components.takedown.batch import TakedownBatch, advance
from steps.materializers import TakedownBatchMaterializer
from steps.work_folder import work_folder


@step(output_materializers=TakedownBatchMaterializer)
def validate_ticket_images(tickets: TakedownBatch) -> Annotated[TakedownBatch, "validated"]:
    """The ticket schema and the Great Expectations image suite; then each ticket's inputs, with the base
    model's weights hashed once for every later step."""
    def validate(run) -> dict:
        inputs, validation = stages.validate_and_resolve(run.ticket_path, tickets.config_path, run.run_key,
                                                           work_folder(run.ticket_id, run.run_key))
        return {"inputs": inputs, "validation": validation}
    return advance(tickets, "validate_ticket_images", validate)
