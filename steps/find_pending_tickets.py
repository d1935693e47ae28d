from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown import sweep
from components.takedown.inbox import staging_folder
from components.config.run_config import load_run_config
from components.takedown.batch import TakedownBatch
from steps.materializers import TakedownBatchMaterializer
from steps.registry_target import active_registry
from steps.work_folder import lethe_home


@step(enable_cache=False, output_materializers=TakedownBatchMaterializer)  # the inbox changes between runs
def find_pending_tickets(inbox: str, config_path: str) -> Annotated[TakedownBatch, "tickets"]:
    """Every ticket in the inbox whose content is not registered yet (remote inboxes are copied first), as a
    batch in which one ticket's failure does not stop the others."""
    return sweep.pending_tickets(staging_folder(inbox, lethe_home()), active_registry(),
                                 load_run_config(config_path).base_model.registry_name, config_path)
