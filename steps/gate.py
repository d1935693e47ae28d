from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from components.registry import RegisteredVersion
from components.run_config import load_run_config
from steps.registry_target import active_registry


@step(enable_cache=False)
def gate(config_path: str, ticket_id: str, registered_version: dict, evaluation: dict) -> Annotated[dict, "decision"]:
    """Promote (aliases) only if every threshold holds; otherwise tag the version rejected."""
    decision = takedown.gate(RegisteredVersion(**registered_version), evaluation["metrics"], ticket_id,
                             load_run_config(config_path), active_registry())
    return decision.as_dict()
