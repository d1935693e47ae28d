"""The takedown pipeline: one ticket through validate -> learn token -> train -> evaluate -> register -> gate -> release.

The same steps as the sweep pipeline, over a batch of one ticket that stops at its first failure.
"""
from __future__ import annotations

from zenml import pipeline

from components.config.run_config import TAKEDOWN_STEPS
from steps.admit_ticket import admit_ticket
from steps.evaluate_adapter import evaluate_adapter
from steps.gate import gate
from steps.learn_concept_token import learn_concept_token
from steps.release import release
from steps.register_adapter import register_adapter
from steps.train_unlearning import train_unlearning
from steps.validate_ticket_images import validate_ticket_images

# The compute block names the stage steps (placement by step name); admit_ticket runs no stage.
STAGES = {"admit_ticket": None} | {name: name for name in TAKEDOWN_STEPS}


@pipeline(enable_cache=True)  # a re-run after a crash resumes at the first unfinished step
def takedown_pipeline(ticket_path: str, config_path: str, ticket_id: str, run_key: str) -> None:
    tickets = admit_ticket(ticket_path=ticket_path, config_path=config_path, ticket_id=ticket_id, run_key=run_key)
    tickets = learn_concept_token(tickets=validate_ticket_images(tickets=tickets))
    tickets = register_adapter(tickets=evaluate_adapter(tickets=train_unlearning(tickets=tickets)))
    release(tickets=gate(tickets=tickets))
