"""The sweep pipeline: every pending ticket of an inbox through the takedown stages. What schedules run."""
from __future__ import annotations

from zenml import pipeline

from steps.sweep_stages import (evaluate_pending, find_pending_tickets, gate_pending, learn_pending_tokens,
                                register_pending, train_pending, validate_pending)

# Each step -> the takedown step whose stage it runs, by which the run config's compute block places it.
STAGES = {"find_pending_tickets": None, "validate_pending": "validate_ticket_images",
          "learn_pending_tokens": "learn_concept_token", "train_pending": "train_unlearning",
          "evaluate_pending": "evaluate_adapter", "register_pending": "register_adapter", "gate_pending": "gate"}


@pipeline(enable_cache=True)
def sweep_pipeline(inbox: str, config_path: str) -> None:
    tickets = find_pending_tickets(inbox=inbox, config_path=config_path)
    tickets = validate_pending(tickets=tickets, config_path=config_path)
    tickets = learn_pending_tokens(tickets=tickets, config_path=config_path)
    tickets = train_pending(tickets=tickets, config_path=config_path)
    tickets = evaluate_pending(tickets=tickets, config_path=config_path)
    tickets = register_pending(tickets=tickets, config_path=config_path)
    gate_pending(tickets=tickets, config_path=config_path)
