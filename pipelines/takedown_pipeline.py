"""The takedown pipeline: validate -> learn token -> train -> evaluate -> register -> gate."""
from __future__ import annotations

from zenml import pipeline

from components.run_config import TAKEDOWN_STEPS
from steps.evaluate_adapter import evaluate_adapter
from steps.gate import gate
from steps.learn_concept_token import learn_concept_token
from steps.register_adapter import register_adapter
from steps.train_unlearning import train_unlearning
from steps.validate_ticket_images import validate_ticket_images

# The compute block names these steps (placement by step name): each step runs its own stage.
STAGES = {name: name for name in TAKEDOWN_STEPS}


@pipeline(enable_cache=True)  # a re-run after a crash resumes at the first unfinished step
def takedown_pipeline(ticket_path: str, config_path: str, ticket_id: str, run_key: str) -> None:
    inputs, _ = validate_ticket_images(ticket_path=ticket_path, config_path=config_path, ticket_id=ticket_id,
                                       run_key=run_key)
    token_dir = learn_concept_token(inputs=inputs)
    adapter_dir = train_unlearning(inputs=inputs, token_dir=token_dir)
    evaluation = evaluate_adapter(inputs=inputs, token_dir=token_dir, adapter_dir=adapter_dir)
    version = register_adapter(inputs=inputs, token_dir=token_dir, adapter_dir=adapter_dir, evaluation=evaluation)
    gate(inputs=inputs, registered_version=version, evaluation=evaluation)
