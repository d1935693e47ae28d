from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from components.resolved_inputs import ResolvedInputs
from steps.work_folder import work_folder


@step
def train_unlearning(inputs: ResolvedInputs, token_dir: str) -> Annotated[str, "adapter_dir"]:
    """The configured erasure method (on clusters its compute profile places it: see the run config's `compute`)."""
    return takedown.train_unlearning(inputs, token_dir, work_folder(inputs.ticket_id, inputs.run_key))
