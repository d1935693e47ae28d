from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from steps.work_folder import work_folder


@step
def train_unlearning(ticket_path: str, config_path: str, ticket_id: str, run_key: str,
                     token_dir: str) -> Annotated[str, "adapter_dir"]:
    """The configured erasure method (on clusters this step gets the GPU node: see configs/*stack*)."""
    return takedown.train_unlearning(ticket_path, config_path, token_dir, work_folder(ticket_id, run_key))
