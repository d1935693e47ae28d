"""`lethe withdraw | release show | release rollback | release rebuild | release export`: the served release.

Exit codes: 0 done, 1 the change was verified and rejected (production unchanged) or failed, 2 bad input.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from pipelines.cli_common import DEFAULT_CONFIG, _fail_input, _load_config, console, err_console

EXIT_FAILED = 1
release_app = typer.Typer(help="The served model: the base plus every approved takedown, verified together.",
                          no_args_is_help=True)


def _stores():
    from components.registry.release_registry import ReleaseRegistry
    from pipelines.run_takedown import registry_for_stack

    registry = registry_for_stack()
    return registry, ReleaseRegistry(registry)


def _model(config):
    from components.models.loading import ModelLoadError, load_pipeline
    from components.takedown.stages import model_device

    try:
        return load_pipeline(config.base_model.source, config.base_model.revision, model_device(config, "release"),
                             config.runtime.dtype, config.base_model.allow_download)
    except ModelLoadError as err:
        _fail_input(err)


def _print_outcome(outcome) -> None:
    verdict = "[green]production[/]" if outcome.promoted else "[red]REJECTED[/] (production unchanged)"
    tickets = ", ".join(outcome.candidate.record.tickets) or "no tickets"
    console.print(f"release version {outcome.version} with {escape(tickets)}: {verdict}", highlight=False)
    for check in outcome.decision.checks:
        console.print(f"  {'pass' if check.passed else 'FAIL'} {escape(check.reason)}", highlight=False, soft_wrap=True)
    if outcome.report_dir:
        console.print(f"report: {escape(str(Path(outcome.report_dir) / 'report.html'))}", highlight=False)


def withdraw(ticket: str = typer.Argument(..., help="The ticket id to take out of the served release."),
             reason: str = typer.Option(..., "--reason", help="Why (an appeal, a legal reversal): recorded in lineage."),
             config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (base model, evaluation, thresholds).")) -> None:
    """Build and verify a release without TICKET; it becomes production only if every remaining concept passes."""
    from components.registry.release_registry import actor
    from components.release.building import ReleaseError
    from components.release.release_flow import change_release
    from steps.work_folder import lethe_home

    cfg = _load_config(config)
    if not reason.strip():
        _fail_input(ValueError("--reason must say why the ticket is withdrawn"))
    registry, releases = _stores()
    model = _model(cfg)
    import uuid

    work = lethe_home() / "releases" / f"withdraw-{uuid.uuid4().hex[:8]}"
    try:
        outcome = change_release(model, cfg, registry, releases, "withdrawal", actor(), work, withdraw=[ticket],
                                 note=reason, progress=True, cache_folder=lethe_home() / "cache" / "original-images")
    except ReleaseError as err:
        _fail_input(err)
    _print_outcome(outcome)
    raise typer.Exit(0 if outcome.promoted else EXIT_FAILED)


@release_app.command("show")
def show(config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (names the registered model)."),
         as_json: bool = typer.Option(False, "--json", help="Print the records as JSON.")) -> None:
    """Every release, oldest first: its tickets, why it was built, its status, and which one is production."""
    from components.registry.release_registry import release_model_name

    name = release_model_name(_load_config(config).base_model.registry_name)
    _, releases = _stores()
    records = releases.versions(name)
    if as_json:
        print(json.dumps(records, indent=2, sort_keys=True))
        return
    if not records:
        console.print(f"{escape(name)}: no release yet", highlight=False)
    for r in records:
        t = r["tags"]
        console.print(f"[bold]{escape(name)} version {r['version']}[/]: {r['status']}, aliases "
                      f"{', '.join(r['aliases']) or 'none'}; {escape(t.get('release_reason', '?'))} by "
                      f"{escape(t.get('release_actor', '?'))} at {escape(t.get('created_at', '?'))}; replaces "
                      f"{escape(t.get('replaces', '?'))}; tickets {escape(t.get('tickets', '[]'))}", highlight=False,
                      soft_wrap=True)
        for key in sorted(k for k in t if k.startswith("event.")):
            console.print(f"  {escape(t[key])}", highlight=False, soft_wrap=True)


@release_app.command("rollback")
def rollback_command(to: Optional[str] = typer.Option(None, "--to", help="Release version (default: the one production "
                                                      "replaced)."),
                     reason: str = typer.Option(..., "--reason", help="Why: recorded in lineage."),
                     config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (names the registered model).")) -> None:
    """Move `production` back to an earlier release that passed verification."""
    from components.registry.release_registry import actor
    from components.release.release_flow import rollback

    name = _load_config(config).base_model.registry_name
    _, releases = _stores()
    try:
        before, after = rollback(releases, name, actor(), reason, to)
    except ValueError as err:
        _fail_input(err)
    console.print(f"production: release {before} -> {after}", highlight=False)


@release_app.command("rebuild")
def rebuild(version: Optional[str] = typer.Option(None, "--version", help="Release version (default: production)."),
            config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (base model, registry name).")) -> None:
    """Rebuild a release from its registry record alone and check its weights hash (exit 1 if it differs)."""
    from components.registry.release_registry import release_model_name
    from components.release.building import read_record, rebuild_weights_sha256

    cfg = _load_config(config)
    name = release_model_name(cfg.base_model.registry_name)
    registry, releases = _stores()
    version = version or releases.production_version(name)
    if version is None:
        _fail_input(ValueError(f"{name} has no production release"))
    record = read_record(releases, name, version)
    found = rebuild_weights_sha256(_model(cfg).pipeline, registry, record)
    same = found == record.weights_sha256
    console.print(f"release {version}: rebuilt weights sha256 {found} "
                  + ("matches the record" if same else f"DIFFERS from the record's {record.weights_sha256}"), highlight=False)
    raise typer.Exit(0 if same else EXIT_FAILED)


@release_app.command("export")
def export(out: Path = typer.Argument(..., help="An empty folder for the diffusers pipeline."),
           version: Optional[str] = typer.Option(None, "--version", help="Release version (default: production)."),
           overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty OUT."),
           config: Path = typer.Option(DEFAULT_CONFIG, help="Run config (base model, registry name).")) -> None:
    """Write the release as a standard diffusers folder (fused weights, safetensors) plus a manifest."""
    from components.release.export import ExportError, export_release

    cfg = _load_config(config)
    registry, releases = _stores()
    try:
        folder = export_release(_model(cfg), registry, releases, cfg.base_model.registry_name, out, version, overwrite)
    except ExportError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"exported to {escape(str(folder))} (StableDiffusionPipeline.from_pretrained loads it)", highlight=False)


def add_commands(app: typer.Typer) -> None:
    app.command("withdraw")(withdraw)
    app.add_typer(release_app, name="release")
