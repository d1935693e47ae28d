from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown import stages
from components.takedown.batch import TakedownBatch, advance
from steps.materializers import TakedownBatchMaterializer
from steps.registry_target import active_registry


@step(enable_cache=False, output_materializers=TakedownBatchMaterializer)
def gate(tickets: TakedownBatch) -> Annotated[TakedownBatch, "outcomes"]:
    """Promote (aliases) only if every threshold holds; otherwise tag the version rejected."""
    registry = active_registry()
    return advance(tickets, "gate", lambda run: {"decision": stages.gate(
        run.version, run.evaluation.metrics, run.ticket_id, run.inputs.config(), registry)})
