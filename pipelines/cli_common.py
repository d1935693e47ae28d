"""What every `lethe` command module shares: paths, the consoles, and failing on a bad input (exit 2).

Its own module so that pipelines/cli.py can import the command modules (takedown_commands,
cluster_commands) and register their commands, without those modules importing cli.py back.
"""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "toy.yaml"
EXIT_INPUT_ERROR = 2

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def _fail_input(err: Exception) -> None:
    err_console.print("[bold red]error:[/] fix the following and run again", highlight=False)
    err_console.print(str(err), highlight=False, markup=False)
    raise typer.Exit(EXIT_INPUT_ERROR)


def _load_config(path: Path):
    from components.domain.file_errors import InputFileError
    from components.config.run_config import load_run_config

    try:
        return load_run_config(path)
    except InputFileError as err:
        _fail_input(err)
