from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown import stages
from components.takedown.batch import TakedownBatch, advance
from steps.materializers import TakedownBatchMaterializer
from steps.work_folder import lethe_home, work_folder


@step(output_materializers=TakedownBatchMaterializer)
def evaluate_adapter(tickets: TakedownBatch) -> Annotated[TakedownBatch, "evaluated"]:
    """Forget, retain and recovery-attack metrics, and the before/after report."""
    return advance(tickets, "evaluate_adapter", lambda run: {"evaluation": stages.evaluate(
        run.inputs, run.token, run.result, work_folder(run.ticket_id, run.run_key) / "report",
        cache_folder=lethe_home() / "cache" / "original-images", progress=True)})
