from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from steps.work_folder import work_folder


@step
def train_unlearning(ticket_path: str, config_path: str, ticket_id: str, run_key: str,
                     token_dir: str) -> Annotated[str, "adapter_dir"]:
    """The configured erasure method (on clusters its compute profile places it: see the run config's `compute`)."""
    return takedown.train_unlearning(ticket_path, config_path, token_dir, work_folder(ticket_id, run_key))
