from __future__ import annotations

from typing import Annotated

from zenml import step

from components import takedown
from steps.work_folder import work_folder


@step
def validate_ticket_images(ticket_path: str, config_path: str, ticket_id: str,
                           run_key: str) -> Annotated[dict, "validation"]:
    """The ticket schema and the Great Expectations image suite; a failure stops the run here."""
    return takedown.validate(ticket_path, config_path, work_folder(ticket_id, run_key))
