from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from steps.work_folder import work_folder


@step
def learn_concept_token(ticket_path: str, config_path: str, ticket_id: str, run_key: str,
                        validation: dict) -> Annotated[str, "token_dir"]:
    """Textual inversion for the ticket's concept on the original model (runs only after validation)."""
    return takedown.learn_concept_token(ticket_path, config_path, work_folder(ticket_id, run_key))
