"""Build, verify and promote releases from the registry: the release's stages, as plain functions.

- `load_takedown`: an approved per-ticket version from the takedown registry (its adapter, its ticket);
- `plan_candidate`: production's takedowns, plus the new ones (a newer takedown of the same ticket replaces
  the older), minus the withdrawn tickets;
- `build`: compose the planned takedowns over the base, with the record that says what and why;
- `register_and_gate`: register the candidate (alias `candidate`), then promote it to `production` with a
  compare-and-set, or reject it with its reasons; a moved production raises ProductionMoved, and the
  caller (release_flow) rebuilds on the new one.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..domain.file_errors import load_validated
from ..domain.ticket import Ticket
from ..erasure.request import ErasureRequest
from ..erasure.result_kinds import load_result
from ..erasure.weight_delta import WeightDelta
from ..registry.model_registry import STATUS_APPROVED, AdapterRegistry
from ..registry.release_registry import ReleaseRegistry, release_model_name
from .composition import compose, weights_sha256
from .record import RELEASE_JSON, ReleaseEntry, ReleaseRecord


class ReleaseError(RuntimeError):
    """A release cannot be built as asked (the message says which ticket or version, and why)."""


@dataclass
class Takedown:
    """An approved takedown as a release uses it: its record entry, its weights, its ticket as a request."""
    entry: ReleaseEntry
    result: object  # ErasureResult
    request: ErasureRequest  # without images: the release verifies its forget/retain sets, not its attack


@dataclass
class Candidate:
    record: ReleaseRecord
    release: WeightDelta
    takedowns: list[Takedown]
    based_on: str | None  # the production version it was built on (None: there was none)
    added: list[str] = field(default_factory=list)  # ticket ids this release adds
    removed: list[str] = field(default_factory=list)  # ticket ids this release drops
    compose_s: float = 0.0  # composing the weights (loading the takedowns from the registry not included)


def load_takedown(registry: AdapterRegistry, name: str, version: str, seed: int = 0) -> Takedown:
    """A per-ticket version of `name` from the registry: refused unless the gate approved it."""
    record = registry.version_record(name, version)
    tags = record["tags"]
    if record["status"] != STATUS_APPROVED:
        raise ReleaseError(f"{name} version {version} (ticket {tags.get('ticket_id')}) is {record['status']}, not "
                           f"{STATUS_APPROVED}: only takedowns the gate approved go into a release")
    client = registry.client
    # The adapter's weights and the ticket are read into memory: the download goes when they are (a long-lived host
    # builds a release per change, each reading every takedown in production).
    with tempfile.TemporaryDirectory(prefix=f"lethe-takedown-{version}-") as where:
        adapter = Path(registry._call("downloading the adapter", client.download_artifacts, record["run_id"], "adapter",
                                      where))
        ticket_dir = Path(registry._call("downloading the ticket", client.download_artifacts, record["run_id"], "ticket",
                                         where))
        files = sorted(p for p in ticket_dir.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".json"))
        if len(files) != 1:
            raise ReleaseError(f"{name} version {version}: expected one ticket file in its 'ticket' artefact, found "
                               f"{[p.name for p in files]}")
        ticket = load_validated(files[0], Ticket)
        result = load_result(adapter)
    entry = ReleaseEntry(ticket_id=ticket.ticket_id, concept=ticket.concept, kind=ticket.kind.value,
                         takedown_version=str(version), content_sha256=tags.get("content_sha256", ""),
                         method=result.method)
    return Takedown(entry, result, ErasureRequest.from_ticket_fields(ticket, seed=seed))


RELEASE_WEIGHTS = "release"  # the artefact that holds a release version's composed weights


def stored_weights(releases: ReleaseRegistry, name: str, version: str, record: ReleaseRecord) -> WeightDelta:
    """Release `version`'s composed weights as registered (read into memory; the download goes), checked against
    the weights hash its record holds."""
    with releases.downloaded(name, version, RELEASE_WEIGHTS) as folder:
        release = load_result(folder)
    found = weights_sha256(release, record.base_weights_sha256)
    if found != record.weights_sha256:
        raise ReleaseError(f"release {version} of {name}: its stored weights hash to {found[:12]}…, its record says "
                           f"{record.weights_sha256[:12]}…")
    return release


def read_record(releases: ReleaseRegistry, name: str, version: str) -> ReleaseRecord:
    """The record stored with release `version` of the release model `name`."""
    return ReleaseRecord.from_dict(releases.record_data(name, version, RELEASE_JSON))


def production(releases: ReleaseRegistry, registry_name: str) -> tuple[str | None, ReleaseRecord | None]:
    name = release_model_name(registry_name)
    version = releases.production_version(name)
    return (None, None) if version is None else (version, read_record(releases, name, version))


def plan_candidate(previous: ReleaseRecord | None, add: list[ReleaseEntry], withdraw: list[str]) -> list[ReleaseEntry]:
    """The entries of the next release, in a fixed order (so that a rebuild composes the same sums)."""
    entries = {e.ticket_id: e for e in (previous.entries if previous else ())}
    for ticket in withdraw:
        if ticket not in entries:
            raise ReleaseError(f"ticket {ticket!r} is not in the production release "
                               f"({', '.join(entries) or 'which holds no tickets'})")
        del entries[ticket]
    for e in add:
        entries[e.ticket_id] = e  # a newer takedown of the same ticket replaces the older one
    return sorted(entries.values(), key=lambda e: int(e.takedown_version))


def build(pipe, base_weights_sha256: str, registry: AdapterRegistry, releases: ReleaseRegistry, registry_name: str,
          reason: str, actor: str, add: list[Takedown] = (), withdraw: list[str] = (), note: str = "",
          seed: int = 0) -> Candidate:
    """The candidate release: production (re-read now) with `add` and without `withdraw`, composed over `pipe`."""
    based_on, previous = production(releases, registry_name)
    if previous is not None and previous.base_weights_sha256 != base_weights_sha256:
        raise ReleaseError(f"production release {based_on} was built on base weights {previous.base_weights_sha256[:12]}…, "
                           f"this run's base is {base_weights_sha256[:12]}…: a release never mixes bases")
    entries = plan_candidate(previous, [t.entry for t in add], list(withdraw))
    known = {t.entry.takedown_version: t for t in add}
    takedowns = [known.get(e.takedown_version) or load_takedown(registry, registry_name, e.takedown_version, seed)
                 for e in entries]
    t0 = time.perf_counter()
    release = compose(pipe, entries, [t.result for t in takedowns])
    compose_s = time.perf_counter() - t0
    record = ReleaseRecord(registry_name=registry_name, base_weights_sha256=base_weights_sha256, entries=tuple(entries),
                           reason=reason, actor=actor, note=note, replaces=based_on)
    record = record.with_weights(weights_sha256(release, base_weights_sha256))
    old = set(previous.tickets) if previous else set()
    new = set(record.tickets)
    return Candidate(record, release, takedowns, based_on, added=sorted(new - old), removed=sorted(old - new),
                     compose_s=compose_s)


def rebuild_weights_sha256(pipe, registry: AdapterRegistry, record: ReleaseRecord) -> str:
    """The weights hash of a release rebuilt from its record and the registry alone."""
    takedowns = [load_takedown(registry, record.registry_name, e.takedown_version) for e in record.entries]
    return weights_sha256(compose(pipe, list(record.entries), [t.result for t in takedowns]), record.base_weights_sha256)


def release_tags(candidate: Candidate) -> dict[str, str]:
    r = candidate.record
    return {"release_reason": r.reason, "release_actor": r.actor, "release_note": r.note or "none",
            "replaces": r.replaces or "none", "weights_sha256": r.weights_sha256,
            "base_weights_sha256": r.base_weights_sha256, "tickets": json.dumps(r.tickets),
            "concepts": json.dumps(r.concepts), "added": json.dumps(candidate.added),
            "removed": json.dumps(candidate.removed), "created_at": r.created_at,
            "takedowns": json.dumps([{"ticket": e.ticket_id, "version": e.takedown_version, "method": e.method,
                                      "content_sha256": e.content_sha256} for e in r.entries])}
