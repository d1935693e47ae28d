"""A sweep: every pending ticket in an inbox through the takedown stages, stage by stage.

Items are plain dicts (they travel between pipeline steps as artefacts). A ticket whose exact content
(ticket + image bytes) is already registered is skipped; a ticket that fails at any stage carries its
error and sits out the later stages, so one bad ticket never stops the others.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .file_errors import INPUT_ERROR_TYPES
from .inbox import TICKET_SUFFIXES


def pending_tickets(inbox: Path, registry, registry_name: str) -> list[dict]:
    """One item per ticket file under `inbox`: to run (ticket_path, ticket_id), skipped (already
    registered: `skipped_version`) or failed at the door (`error`, a bad ticket file)."""
    from .file_errors import InputFileError
    from .ticket import content_sha256, load_ticket

    items = []
    # Not only regular files: a FIFO or a broken link named like a ticket is recorded as a bad ticket (never opened).
    for path in sorted(p for p in Path(inbox).rglob("*") if p.suffix in TICKET_SUFFIXES and not p.is_dir()):
        item: dict = {"ticket_path": str(path.resolve())}
        try:
            loaded = load_ticket(path)
        except InputFileError as err:
            items.append(item | {"error": error_record("load", err)})
            continue
        item["ticket_id"] = loaded.ticket.ticket_id
        done = registry.find_versions(registry_name, content_sha256=content_sha256(loaded))
        if done:
            item["skipped_version"] = str(done[0].version)
        items.append(item)
    return items


def error_record(stage: str, err: BaseException) -> dict:
    return {"stage": stage, "type": type(err).__name__, "message": str(err),
            "bad_input": type(err).__name__ in INPUT_ERROR_TYPES}


def active(item: dict) -> bool:
    return "error" not in item and "skipped_version" not in item


def advance(items: list[dict], stage: str, work: Callable[[dict], dict]) -> list[dict]:
    """Run `work` on every active item and merge what it returns; an exception becomes the item's error."""
    out = []
    for item in items:
        item = dict(item)
        if active(item):
            try:
                item.update(work(item))
            except Exception as err:  # noqa: BLE001 - the business rule: one ticket's failure is recorded, not raised
                item["error"] = error_record(stage, err)
        out.append(item)
    return out


def status(item: dict) -> str:
    if "skipped_version" in item:
        return f"skipped (version {item['skipped_version']})"
    if "error" in item:
        return "bad input" if item["error"]["bad_input"] else f"failed at {item['error']['stage']}"
    if "decision" in item:
        return "promoted" if item["decision"]["passed"] else "rejected"
    return "not finished"


def failed(items: list[dict]) -> list[dict]:
    """Items a scheduled run must flag: errors and rejections (a skip is fine)."""
    return [i for i in items if status(i) != "promoted" and not status(i).startswith("skipped")]


class SweepFlagged(RuntimeError):
    """Raised after a sweep handled every ticket, when some failed or were rejected (so schedulers alert)."""

    def __init__(self, items: list[dict]):
        self.items = items
        super().__init__("; ".join(f"{i.get('ticket_id', i['ticket_path'])}: {status(i)}"
                                   + (f" ({i['error']['type']}: {i['error']['message']})" if "error" in i else "")
                                   for i in items))
