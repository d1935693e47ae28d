"""The sweep pipeline: every pending ticket of an inbox through the takedown steps. What schedules run.

The same steps as the takedown pipeline, over a batch in which one ticket's failure does not stop the
others; the run is failed at the end (flag_failures) if any ticket failed or was rejected.
"""
from __future__ import annotations

from zenml import pipeline

from components.config.run_config import TAKEDOWN_STEPS
from steps.evaluate_adapter import evaluate_adapter
from steps.find_pending_tickets import find_pending_tickets
from steps.flag_failures import flag_failures
from steps.gate import gate
from steps.learn_concept_token import learn_concept_token
from steps.release import release
from steps.register_adapter import register_adapter
from steps.train_unlearning import train_unlearning
from steps.validate_ticket_images import validate_ticket_images

# Placement by step name, as in the takedown pipeline; the steps around the stages run none.
STAGES = {"find_pending_tickets": None} | {name: name for name in TAKEDOWN_STEPS} | {"flag_failures": None}


@pipeline(enable_cache=True)
def sweep_pipeline(inbox: str, config_path: str) -> None:
    tickets = find_pending_tickets(inbox=inbox, config_path=config_path)
    tickets = learn_concept_token(tickets=validate_ticket_images(tickets=tickets))
    tickets = register_adapter(tickets=evaluate_adapter(tickets=train_unlearning(tickets=tickets)))
    outcomes = release(tickets=gate(tickets=tickets))
    flag_failures(outcomes=outcomes)
