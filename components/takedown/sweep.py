"""A sweep: every pending ticket in an inbox, as one batch through the takedown stages.

A ticket whose exact content (ticket + image bytes) is already registered is skipped; a ticket that
cannot even be read is recorded as bad input at the door. What happens to a ticket that fails later is
the batch's rule (components/takedown/batch.py: advance): it keeps its error and the others go on.
"""
from __future__ import annotations

from pathlib import Path

from .inbox import TICKET_SUFFIXES
from .batch import TakedownBatch, TicketRun, error_record


def pending_tickets(inbox: Path, registry, registry_name: str, config_path: str) -> TakedownBatch:
    """One run per ticket file under `inbox`: to do (with its run key), skipped (already registered:
    `skipped_version`) or failed at the door (`error`, a bad ticket file)."""
    from .stages import run_key
    from ..domain.ticket import content_sha256, load_ticket

    runs = []
    # Not only regular files: a FIFO or a broken link named like a ticket is recorded as a bad ticket (never opened).
    for path in sorted(p for p in Path(inbox).rglob("*") if p.suffix in TICKET_SUFFIXES and not p.is_dir()):
        run = TicketRun(ticket_path=str(path.resolve()))
        try:
            loaded = load_ticket(path)
            run.run_key = run_key(path, config_path)
        except Exception as err:  # noqa: BLE001 - a ticket that cannot be read is recorded, never stops the sweep
            run.error = error_record("load", err)
            runs.append(run)
            continue
        run.ticket_id = loaded.ticket.ticket_id
        done = registry.find_versions(registry_name, content_sha256=content_sha256(loaded))
        if done:
            run.skipped_version = str(done[0].version)
        runs.append(run)
    return TakedownBatch(config_path=str(config_path), runs=runs, isolate_failures=True)
