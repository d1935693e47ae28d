from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from components.resolved_inputs import ResolvedInputs
from steps.work_folder import work_folder


@step
def learn_concept_token(inputs: ResolvedInputs) -> Annotated[str, "token_dir"]:
    """Textual inversion for the ticket's concept on the original model (runs only after validation)."""
    return takedown.learn_concept_token(inputs, work_folder(inputs.ticket_id, inputs.run_key))
