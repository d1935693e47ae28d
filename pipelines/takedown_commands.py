"""`lethe takedown | sweep | audit | demo`: the product's commands, over the takedown pipeline.

Exit codes: 0 promoted (sweep: nothing failed), 1 the run failed or the gate rejected, 2 bad input.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.panel import Panel

from pipelines.cli_common import DEFAULT_CONFIG, EXIT_INPUT_ERROR, REPO_ROOT, _fail_input, _load_config, console, err_console

EXIT_FAILED = 1
STACK_HELP = "Stack config (configs/stacks/*.yaml); default: the embedded local stack."
DEMO_TICKET = REPO_ROOT / "examples" / "tickets" / "erase-circle" / "ticket.yaml"


def _input_errors():
    from components.domain.file_errors import InputFileError
    from components.validation.image_validation import ImageValidationError

    return InputFileError, ImageValidationError


def _outcome_panel(outcome) -> Panel:
    from pipelines.local_stack import local_tracking_uri

    d = outcome.decision
    lines = [f"[bold]{'PROMOTED' if outcome.promoted else 'REJECTED'}[/] ticket {escape(outcome.ticket_id)}"]
    for check in d["checks"]:
        mark = "[green]pass[/]" if check["passed"] else "[red]FAIL[/]"
        lines.append(f"  {mark} {escape(check['reason'])}")
    v, r = outcome.version, outcome.release
    lines += [f"registry: {escape(v['name'])} version {v['version']}"
              + (" (approved)" if d["passed"] else " (tagged rejected; aliases untouched)")]
    if r is not None:
        lines.append(f"release:  {escape(v['name'])}-release version {r['version']} with "
                     f"{escape(', '.join(r['tickets']))}: " + ("[green]production[/]" if r["promoted"] else
                     "[red]REJECTED[/], production unchanged: " + escape("; ".join(r["reasons"]))))
    lines += [
              f"report:   {escape(str(Path(outcome.report_dir) / 'report.html'))}",
              f"pipeline run: {escape(outcome.run_name)} on stack {escape(outcome.stack)}",
              f"MLflow UI: mlflow ui --backend-store-uri {escape(local_tracking_uri())}"]
    return Panel("\n".join(lines), title="takedown", border_style="green" if outcome.promoted else "red")


def _run_one(ticket: Path, config: Path, stack=None):
    """Run a ticket; returns (exit code, outcome or None), printing what went wrong."""
    from components.registry.model_registry import RegistryUnavailable
    from pipelines.run_takedown import StepFailed, run_takedown
    from pipelines.stack_activation import StackNotReady

    try:
        outcome = run_takedown(ticket, config, stack_config=stack)
    except StackNotReady as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        return EXIT_INPUT_ERROR, None
    except _input_errors() as err:
        err_console.print(f"[bold red]error:[/] {escape(str(ticket))}: fix the following and run again", highlight=False)
        err_console.print(str(err), highlight=False, markup=False)
        return EXIT_INPUT_ERROR, None
    except RegistryUnavailable as err:
        err_console.print(f"[bold red]failed:[/] {escape(str(ticket))}: nothing ran: {escape(str(err))}", highlight=False)
        return EXIT_FAILED, None
    except StepFailed as err:
        if err.bad_input:
            err_console.print(f"[bold red]error:[/] {escape(str(ticket))}: rejected at {err.step}; fix the following "
                              "and run again", highlight=False)
            err_console.print(err.message, highlight=False, markup=False)
            return EXIT_INPUT_ERROR, None
        err_console.print(f"[bold red]failed:[/] {escape(str(ticket))}: {escape(str(err))}", highlight=False)
        return EXIT_FAILED, None
    console.print(_outcome_panel(outcome))
    return (0 if outcome.promoted else EXIT_FAILED), outcome


def takedown(ticket: Path = typer.Argument(..., help="The takedown ticket (YAML or JSON) with its images beside it."),
             config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (the toy world by default)."),
             stack: Optional[Path] = typer.Option(None, help=STACK_HELP)) -> None:
    """Run one ticket end to end: validate, learn token, erase, evaluate, register, gate.

    Re-running the same ticket after a crash resumes at the first unfinished step."""
    from pipelines.cluster_commands import load_stack

    _load_config(config)
    code, _ = _run_one(ticket, config, load_stack(stack) if stack else None)  # bad input stops before the pipeline
    raise typer.Exit(code)


def demo() -> None:
    """Erase "circle" from the toy world with the shipped example ticket and its 5 images (a few minutes on CPU)."""
    code, _ = _run_one(DEMO_TICKET, DEFAULT_CONFIG)
    raise typer.Exit(code)


def sweep(inbox: str = typer.Argument(..., help="A folder or URL (e.g. s3://bucket/inbox) of tickets (*.yaml, *.yml, "
                                      "*.json), e.g. a scheduled inbox that `lethe submit` fills."),
          config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (the toy world by default)."),
          stack: Optional[Path] = typer.Option(None, help=STACK_HELP)) -> None:
    """Run the sweep pipeline over an inbox: every ticket through the takedown steps in one run. A ticket whose
    exact content is already registered is skipped; one failing ticket does not stop the others; the exit code
    is 1 if any failed or was rejected."""
    from components.takedown.inbox import is_local
    from components.registry.model_registry import RegistryUnavailable
    from components.takedown.batch import flagged
    from pipelines.cluster_commands import load_stack
    from pipelines.run_takedown import StepFailed, outcome_of, run_sweep
    from pipelines.stack_activation import StackNotReady

    if is_local(inbox) and not Path(inbox).is_dir():
        _fail_input(ValueError(f"{inbox}: not a folder"))
    cfg = _load_config(config)
    stack_config = load_stack(stack) if stack else None
    try:
        # a plain folder as an absolute path: the pipeline's steps may run elsewhere than this shell's folder
        batch, run_name, stack_name = run_sweep(inbox if "://" in inbox else str(Path(inbox).resolve()), config,
                                                stack_config)
    except (StackNotReady, *_input_errors()) as err:  # the stack cannot place the config's steps, or is not there
        _fail_input(err)
    except (RegistryUnavailable, StepFailed) as err:
        err_console.print(f"[bold red]failed:[/] sweep of {escape(inbox)}: {escape(str(err))}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    for ticket in batch.runs:
        if ticket.error is not None:
            err_console.print(f"[bold red]error:[/] {escape(ticket.label())}: {escape(ticket.status())}: "
                              f"{escape(ticket.error['message'])}", highlight=False)
        elif ticket.skipped_version is not None:
            console.print(f"skip {escape(ticket.ticket_path)}: already registered as {cfg.base_model.registry_name} "
                          f"version {ticket.skipped_version}", highlight=False, soft_wrap=True)
        else:
            console.print(_outcome_panel(outcome_of(ticket, run_name, stack_name)))
    for ticket in batch.runs:  # plain lines: scheduled jobs grep these, and a narrow terminal must not wrap them
        print(f"{ticket.status():>24}  {ticket.ticket_path}")
    failed = flagged(batch)
    print(f"{len(batch.runs)} tickets: {len(batch.runs) - len(failed)} ok, {len(failed)} failed or rejected")
    raise typer.Exit(EXIT_FAILED if failed else 0)


AUDIT_FIELDS = ("ticket_id", "concept", "kind", "requester", "legal_basis", "ticket_created_at", "content_sha256",
                "images", "base_model", "base_revision", "base_weights_sha256", "method", "hyperparameters",
                "code_version", "library_versions", "config", "run_id", "decision_checks", "decision_reasons")


def audit(ticket: Optional[str] = typer.Option(None, "--ticket", help="Every version made for this ticket id."),
          version: Optional[str] = typer.Option(None, "--version", help="One registry version number."),
          config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (names the registered model)."),
          as_json: bool = typer.Option(False, "--json", help="Print the records as JSON.")) -> None:
    """The lineage of a ticket or version, read back from the registry: what was erased, from which
    images, by which code and settings, with which metrics, and why it was promoted or rejected."""
    from components.config.run_config import load_run_config
    from pipelines.run_takedown import registry_for_stack

    if (ticket is None) == (version is None):
        _fail_input(ValueError("give exactly one of --ticket ID or --version N"))
    name = load_run_config(config).base_model.registry_name
    registry = registry_for_stack()
    numbers = [version] if version else [v.version for v in registry.find_versions(name, ticket_id=ticket)]
    if not numbers:
        _fail_input(ValueError(f"no version of {name} was registered for ticket {ticket!r}"))
    records = [registry.version_record(name, n) for n in numbers]
    from components.registry.release_registry import ReleaseRegistry, release_model_name

    releases = ReleaseRegistry(registry).containing(release_model_name(name), ticket) if ticket else []
    if as_json:
        print(json.dumps({"versions": records, "releases": releases} if ticket else records, indent=2, sort_keys=True))
        return
    for r in records:
        console.print(f"[bold]{escape(r['name'])} version {r['version']}[/]: {r['status']}, aliases "
                      f"{', '.join(r['aliases']) or 'none'}", highlight=False)
        for field in AUDIT_FIELDS:
            if field in r["tags"]:
                value = r["tags"][field].replace("\n", "; ")
                console.print(f"  {field}: {escape(value)}", highlight=False, soft_wrap=True)
        for metric, value in sorted(r["metrics"].items()):
            console.print(f"  metric {metric}: {value:.6g}", highlight=False)
        console.print(f"  artefacts: {', '.join(r['artefacts'])} (MLflow run {r['run_id']})", highlight=False)
    for r in releases:
        t = r["tags"]
        console.print(f"[bold]in release {escape(r['name'])} version {r['version']}[/]: {r['status']}, aliases "
                      f"{', '.join(r['aliases']) or 'none'}; {escape(t.get('release_reason', '?'))} by "
                      f"{escape(t.get('release_actor', '?'))} at {escape(t.get('created_at', '?'))}", highlight=False)
    if ticket and not releases:
        console.print("in no release yet", highlight=False)


def add_commands(app: typer.Typer) -> None:
    """Register this module's commands on the `lethe` app (pipelines/cli.py calls it)."""
    app.command("takedown")(takedown)
    app.command("demo")(demo)
    app.command("sweep")(sweep)
    app.command("audit")(audit)
