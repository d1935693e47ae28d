"""Where a takedown's files go: one folder per (ticket, config) content key, under the Lethe home."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def lethe_home() -> Path:
    return Path(os.environ.get("LETHE_HOME", REPO_ROOT / ".lethe")).resolve()


def work_folder(ticket_id: str, run_key: str) -> Path:
    folder = lethe_home() / "runs" / ticket_id / run_key[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder
