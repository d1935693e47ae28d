"""The sweep pipeline's steps: each runs one takedown stage for every pending ticket of the inbox.

Same stages as the takedown pipeline (components/takedown.py); components/sweep.py keeps one ticket's
failure from stopping the others. Each step is placed by the compute profile of the takedown step whose stage
it runs (pipelines/sweep_pipeline.py: STAGES).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, step

from components import sweep, takedown
from components.inbox import staging_folder
from components.registry import RegisteredVersion
from components.resolved_inputs import ResolvedInputs
from components.run_config import load_run_config
from steps.registry_target import active_registry
from steps.work_folder import lethe_home, work_folder


def _work(item: dict) -> Path:
    return work_folder(item["ticket_id"], item["run_key"])


def _inputs(item: dict) -> ResolvedInputs:
    return ResolvedInputs(**item["inputs"])


@step(enable_cache=False)  # the inbox changes between runs
def find_pending_tickets(inbox: str, config_path: str) -> Annotated[list[dict], "tickets"]:
    """Every ticket in the inbox whose content is not registered yet (remote inboxes are copied first)."""
    items = sweep.pending_tickets(staging_folder(inbox, lethe_home()), active_registry(),
                                  load_run_config(config_path).base_model.registry_name)
    return sweep.advance(items, "load", lambda i: {"run_key": takedown.run_key(i["ticket_path"], config_path)})


@step
def validate_pending(tickets: list[dict], config_path: str) -> Annotated[list[dict], "validated"]:
    def validate(i: dict) -> dict:
        inputs, validation = takedown.validate_and_resolve(i["ticket_path"], config_path, i["run_key"], _work(i))
        return {"inputs": inputs.model_dump(), "validation": validation}
    return sweep.advance(tickets, "validate", validate)


@step
def learn_pending_tokens(tickets: list[dict], config_path: str) -> Annotated[list[dict], "with_tokens"]:
    return sweep.advance(tickets, "learn_concept_token", lambda i: {
        "token_dir": takedown.learn_concept_token(_inputs(i), _work(i))})


@step
def train_pending(tickets: list[dict], config_path: str) -> Annotated[list[dict], "with_adapters"]:
    return sweep.advance(tickets, "train_unlearning", lambda i: {
        "adapter_dir": takedown.train_unlearning(_inputs(i), i["token_dir"], _work(i))})


@step
def evaluate_pending(tickets: list[dict], config_path: str) -> Annotated[list[dict], "evaluated"]:
    return sweep.advance(tickets, "evaluate", lambda i: {
        "evaluation": takedown.evaluate(_inputs(i), i["token_dir"], i["adapter_dir"], _work(i),
                                        cache_folder=lethe_home() / "cache" / "original-images")})


@step(enable_cache=False)  # a side effect: one registry version per ticket and run
def register_pending(tickets: list[dict], config_path: str) -> Annotated[list[dict], "registered"]:
    run_id, registry = str(get_step_context().pipeline_run.id), active_registry()

    def register(i: dict) -> dict:
        version = takedown.register(_inputs(i), i["token_dir"], i["adapter_dir"], i["evaluation"]["report_dir"],
                                    i["evaluation"]["metrics"], _work(i), registry, run_id)
        return {"version": {"name": version.name, "version": version.version, "run_id": version.run_id,
                            "source": version.source}}
    return sweep.advance(tickets, "register", register)


@step(enable_cache=False)
def gate_pending(tickets: list[dict], config_path: str) -> Annotated[list[dict], "outcomes"]:
    """Promote or reject each registered version; the run fails at the end (for alerting) if any ticket
    failed or was rejected, after every other ticket was handled."""
    config, registry = load_run_config(config_path), active_registry()
    outcomes = sweep.advance(tickets, "gate", lambda i: {"decision": takedown.gate(
        RegisteredVersion(**i["version"]), i["evaluation"]["metrics"], i["ticket_id"], config, registry).as_dict()})
    flagged = sweep.failed(outcomes)
    if flagged:
        raise sweep.SweepFlagged(flagged)
    return outcomes
