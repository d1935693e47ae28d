from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from steps.work_folder import lethe_home, work_folder


@step
def evaluate_adapter(ticket_path: str, config_path: str, ticket_id: str, run_key: str, token_dir: str,
                     adapter_dir: str) -> Annotated[dict, "evaluation"]:
    """Forget, retain and recovery-attack metrics, and the before/after report."""
    return takedown.evaluate(ticket_path, config_path, token_dir, adapter_dir, work_folder(ticket_id, run_key),
                             cache_folder=lethe_home() / "cache" / "original-images")
