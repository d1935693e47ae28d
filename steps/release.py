from __future__ import annotations

import uuid
from typing import Annotated

from zenml import get_step_context, step

from components.takedown.batch import TakedownBatch
from components.takedown.releasing import release_batch
from steps.materializers import TakedownBatchMaterializer
from steps.registry_target import active_registry
from steps.work_folder import lethe_home


@step(enable_cache=False, output_materializers=TakedownBatchMaterializer)  # reads and moves `production`
def release(tickets: TakedownBatch) -> Annotated[TakedownBatch, "released"]:
    """The approved tickets join the served model: one candidate release (production + them), verified for every
    concept in it, promoted to `production` only if it passes."""
    run = get_step_context().pipeline_run
    reason = "sweep" if tickets.isolate_failures else "takedown"
    work = lethe_home() / "releases" / f"{run.id}-{uuid.uuid4().hex[:8]}"
    return release_batch(tickets, active_registry(), work, reason, cache_folder=lethe_home() / "cache" / "original-images",
                         progress=True)
