# No `from __future__ import annotations` here: ZenML reads the Tuple of outputs from real annotations.
from typing import Annotated, Tuple

from zenml import step

from components import takedown
from components.resolved_inputs import ResolvedInputs
from steps.work_folder import work_folder


@step
def validate_ticket_images(ticket_path: str, config_path: str, ticket_id: str, run_key: str) -> Tuple[
        Annotated[ResolvedInputs, "inputs"], Annotated[dict, "validation"]]:
    """The ticket schema and the Great Expectations image suite (a failure stops the run here); then the
    run's inputs, with the base model's weights hashed once for every later step."""
    inputs, validation = takedown.validate_and_resolve(ticket_path, config_path, run_key, work_folder(ticket_id, run_key))
    return inputs, validation  # a tuple literal: how ZenML tells two outputs from one tuple-valued output
