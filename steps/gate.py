from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from components.registry import RegisteredVersion
from components.resolved_inputs import ResolvedInputs
from steps.registry_target import active_registry


@step(enable_cache=False)
def gate(inputs: ResolvedInputs, registered_version: dict, evaluation: dict) -> Annotated[dict, "decision"]:
    """Promote (aliases) only if every threshold holds; otherwise tag the version rejected."""
    decision = takedown.gate(RegisteredVersion(**registered_version), evaluation["metrics"], inputs.ticket_id,
                             inputs.config(), active_registry())
    return decision.as_dict()
