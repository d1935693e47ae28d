from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown.batch import TakedownBatch, TicketRun
from steps.materializers import TakedownBatchMaterializer


@step(output_materializers=TakedownBatchMaterializer)
def admit_ticket(ticket_path: str, config_path: str, ticket_id: str, run_key: str) -> Annotated[TakedownBatch, "tickets"]:
    """The takedown's batch of one ticket, which stops at its first failure. `run_key` (the inputs by content)
    makes a changed ticket, image, config or base model a new run rather than a cached one."""
    return TakedownBatch(config_path=config_path, runs=[TicketRun(ticket_path=ticket_path, ticket_id=ticket_id,
                                                                  run_key=run_key)])
