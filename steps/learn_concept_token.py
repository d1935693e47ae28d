from __future__ import annotations

from typing import Annotated

from zenml import step

from components.takedown import stages
from components.takedown.batch import TakedownBatch, advance
from steps.materializers import TakedownBatchMaterializer


@step(output_materializers=TakedownBatchMaterializer)
def learn_concept_token(tickets: TakedownBatch) -> Annotated[TakedownBatch, "with_tokens"]:
    """Textual inversion for each ticket's concept on the original model."""
    return advance(tickets, "learn_concept_token", lambda run: {"token": stages.learn_concept_token(run.inputs, progress=True)})
