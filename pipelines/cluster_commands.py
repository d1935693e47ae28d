"""`lethe stack register | submit | schedule`: running on a cluster through ZenML's orchestrators.

Exit codes as elsewhere: 0 ok, 1 failed, 2 an input (config, ticket, stack, cron) is wrong.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Optional

import typer
from rich.markup import escape

from pipelines.cli_common import DEFAULT_CONFIG, REPO_ROOT, _fail_input, _load_config, console, err_console

stack_app = typer.Typer(help="ZenML stacks from configs/stacks/*.yaml (local, Kubernetes, Kubeflow).", no_args_is_help=True)
CRON = re.compile(r"^\S+( \S+){4}$")  # five fields; the orchestrator (CronJob, KFP) checks each field's range


def load_stack(path: Path):
    from components.domain.file_errors import InputFileError
    from components.config.stack_config import load_stack_config

    try:
        return load_stack_config(path)
    except InputFileError as err:
        _fail_input(err)


@stack_app.command("register")
def register(config: Path = typer.Argument(..., help="A stack config, e.g. configs/stacks/kubernetes.yaml."),
             activate: bool = typer.Option(False, help="Also make it the active stack.")) -> None:
    """Register (or update) the stack's components and the stack in the ZenML store. Contacts no cluster.

    Needs the ZenML secrets the config names (MLflow credentials; S3 keys unless the pods have a cloud identity)."""
    from pipelines.local_stack import configure_environment

    stack = load_stack(config)
    configure_environment()
    from pipelines.stack_activation import StackNotReady
    from pipelines.stack_registration import register_stack

    try:
        done = register_stack(stack, activate=activate)
    except StackNotReady as err:
        _fail_input(err)
    verb = "ready: embedded" if not stack.remote else "registered" if done.created else "updated"
    console.print(f"{verb} stack [bold]{escape(done.stack)}[/]"
                  + "".join(f"\n  {kind}: {escape(name)}" for kind, name in done.components.items()), highlight=False)


def submit(ticket: Path = typer.Argument(..., help="The ticket (YAML or JSON) with its images beside it."),
           inbox: str = typer.Option(..., help="The inbox a scheduled sweep reads: a folder or a URL (s3://bucket/inbox)."),
           config: Path = typer.Option(DEFAULT_CONFIG, help="Run config whose image rules the ticket must pass.")) -> None:
    """Check a ticket (schema and image rules) and put it in the inbox for the next scheduled sweep.

    A bad ticket is refused here, before anything is copied; submitting the same content twice is harmless."""
    from components.domain.file_errors import InputFileError
    from components.validation.image_validation import ImageValidationError
    from components.takedown.inbox import submit as submit_ticket

    cfg = _load_config(config)
    try:
        done = submit_ticket(ticket, inbox, cfg, config)
    except (InputFileError, ImageValidationError) as err:
        _fail_input(err)
    except (OSError, ValueError) as err:
        err_console.print(f"[bold red]failed:[/] could not write to the inbox {escape(inbox)}: {escape(str(err))}")
        raise typer.Exit(1) from err
    console.print(f"{'already in the inbox' if done.already_there else 'submitted'}: ticket {escape(done.ticket_id)} "
                  f"-> {escape(done.destination)}", highlight=False, soft_wrap=True)


def path_in_pods(path: Path, stack) -> str:
    """Where the pods find a file: the repository's files under the image's workdir, others must lie on
    the shared volume (the pods see nothing else)."""
    path = path.resolve()
    if path.is_relative_to(REPO_ROOT):
        return str(PurePosixPath(stack.image_workdir) / path.relative_to(REPO_ROOT).as_posix())
    if stack.shared_volume.holds(path.as_posix()):
        return path.as_posix()
    raise ValueError(f"{path}: the pods cannot see this file; ship it in the image (configs/) or put it on the "
                     f"shared volume ({stack.shared_volume.mount_path})")


def inbox_in_pods(inbox: str, stack) -> str:
    from components.takedown.inbox import is_local

    if not is_local(inbox):
        return inbox
    if not stack.shared_volume.holds(inbox):
        raise ValueError(f"{inbox}: a scheduled sweep's inbox must be a URL (s3://...) or a folder on the shared "
                         f"volume ({stack.shared_volume.mount_path})")
    return inbox


def scheduled_sweep(cron: str, inbox: str, config_path: Path, stack, name: str):
    """The sweep pipeline configured with its schedule and placement, and its parameters as the pods see them.
    Raises ValueError for what cannot be scheduled."""
    from zenml.config.schedule import Schedule

    from components.config.run_config import load_run_config
    from pipelines.stack_activation import pipeline_options
    from pipelines.sweep_pipeline import STAGES, sweep_pipeline

    if not stack.remote:
        raise ValueError("the local orchestrator runs no schedules: use a kubernetes or kubeflow stack config, or "
                         "have cron (or the k8s/ sweep CronJob) run `lethe sweep`")
    if not CRON.match(cron):
        raise ValueError(f"--cron {cron!r}: expected five fields, e.g. '0 3 * * *'")
    parameters = {"inbox": inbox_in_pods(inbox, stack), "config_path": path_in_pods(config_path, stack)}
    options = pipeline_options(load_run_config(config_path), stack, STAGES, scheduled=True)
    pipeline = sweep_pipeline.with_options(schedule=Schedule(name=name, cron_expression=cron), **options)
    return pipeline, parameters


def schedule(cron: str = typer.Option(..., help='When to sweep, in cron syntax (UTC), e.g. "0 3 * * *".'),
             inbox: str = typer.Option(..., help="The inbox: s3://bucket/inbox or a folder on the shared volume."),
             stack: Path = typer.Option(..., help="The stack config (configs/stacks/kubernetes.yaml or kubeflow.yaml)."),
             config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (shipped in the image, or on the shared volume)."),
             name: Optional[str] = typer.Option(None, help="Schedule name (default: lethe-sweep-<stack>).")) -> None:
    """Create a ZenML schedule that runs the sweep pipeline over the inbox: a Kubernetes CronJob or a Kubeflow
    recurring run, with concurrency forbidden so two sweeps never overlap."""
    from pipelines.local_stack import configure_environment

    stack_config = load_stack(stack)
    run_config = _load_config(config)
    configure_environment()
    from pipelines.stack_activation import StackNotReady, activate, require_placeable

    try:
        require_placeable(run_config, config, stack_config)  # before anything is built or submitted
        pipeline, parameters = scheduled_sweep(cron, inbox, config, stack_config, name or f"lethe-sweep-{stack_config.name}")
        activate(stack_config)
    except (ValueError, StackNotReady) as err:
        _fail_input(err)
    pipeline(**parameters)
    console.print(f"scheduled: sweep of {escape(parameters['inbox'])} at '{escape(cron)}' on stack "
                  f"{escape(stack_config.name)} (concurrency forbidden)", highlight=False)


def add_commands(app: typer.Typer) -> None:
    """Register `stack register`, `submit` and `schedule` on the `lethe` app (pipelines/cli.py calls it)."""
    app.add_typer(stack_app, name="stack")
    app.command("submit")(submit)
    app.command("schedule")(schedule)
