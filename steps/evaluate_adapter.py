"""Thin ZenML steps over `components/` (validate, learn token, train, evaluate, register, gate)."""
from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from components.resolved_inputs import ResolvedInputs
from steps.work_folder import lethe_home, work_folder


@step
def evaluate_adapter(inputs: ResolvedInputs, token_dir: str, adapter_dir: str) -> Annotated[dict, "evaluation"]:
    """Forget, retain and recovery-attack metrics, and the before/after report."""
    return takedown.evaluate(inputs, token_dir, adapter_dir, work_folder(inputs.ticket_id, inputs.run_key),
                             cache_folder=lethe_home() / "cache" / "original-images")
