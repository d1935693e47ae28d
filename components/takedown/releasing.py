"""The takedown's last stage: the approved tickets of a batch join the served model.

One candidate release for the whole batch (a takedown: its one ticket; a sweep: every ticket its gate
approved tonight), built on the current production, verified for every concept in it, and promoted to
`production` only if it passes (components/release/release_flow.py). Each ticket records the release's
outcome; a ticket whose takedown passed alone but whose release was rejected is "rejected in release".
"""
from __future__ import annotations

from pathlib import Path

from ..erasure.request import ErasureRequest
from ..registry.release_registry import ReleaseRegistry, actor
from ..release.building import Takedown
from ..release.record import ReleaseEntry
from ..release.release_flow import change_release
from .batch import TakedownBatch, TicketRun, error_record


def _takedown(run: TicketRun) -> tuple[Takedown, ErasureRequest]:
    from ..domain.ticket import content_sha256
    from .stages import request_for

    loaded, config = run.inputs.ticket(), run.inputs.config()
    t = loaded.ticket
    entry = ReleaseEntry(ticket_id=t.ticket_id, concept=t.concept, kind=t.kind.value,
                         takedown_version=run.version.version, content_sha256=content_sha256(loaded),
                         method=run.result.method)
    plain = ErasureRequest.from_ticket_fields(t, seed=config.runtime.seed)
    return Takedown(entry, run.result, plain), request_for(loaded, config, run.token)


def release_batch(batch: TakedownBatch, registry, work: Path, reason: str, cache_folder: Path | None = None,
                  progress: bool = False) -> TakedownBatch:
    """Every ticket the gate approved, into one candidate release; each approved run gets `release` set."""
    from .stages import stage_model

    approved = [r for r in batch.runs if r.active and r.decision is not None and r.decision.passed]
    if not approved:
        return batch
    inputs = approved[0].inputs
    config = inputs.config()
    try:
        pairs = [_takedown(r) for r in approved]
        model = stage_model(inputs, config, "release")
        outcome = change_release(model, config, registry, ReleaseRegistry(registry), reason, actor(), work,
                                 add=[t for t, _ in pairs], new_requests={t.entry.ticket_id: q for t, q in pairs},
                                 progress=progress, cache_folder=cache_folder,
                                 reused={r.ticket_id: r.evaluation for r in approved})
        record = outcome.as_dict()
    except Exception as err:  # noqa: BLE001 - a sweep records the failure on every ticket; a takedown raises
        if not batch.isolate_failures:
            raise
        record = None
        for r in approved:
            r.error = error_record("release", err)
    runs = []
    for run in batch.runs:
        if run in approved and record is not None:
            run = TicketRun(**{**run.__dict__, "release": record})
        runs.append(run)
    return TakedownBatch(config_path=batch.config_path, runs=runs, isolate_failures=batch.isolate_failures)
