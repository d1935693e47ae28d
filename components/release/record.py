"""What a release is made of, as a record the registry keeps: enough to rebuild its weights and to audit it.

A release lists its takedowns (ticket, the takedown's registry version, the ticket's content hash, the
method), the base it is built on, the release it replaced, why it was built and by whom, and the sha256
of its composed weights. Rebuilding from this record (the listed takedown versions, the same base) gives
the same weights hash; `lethe release rebuild` checks that.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

RELEASE_JSON = "lethe_release.json"
FORMAT = "lethe-release/1"
REASONS = ("takedown", "sweep", "withdrawal", "rollback", "rebuild")


@dataclass(frozen=True)
class ReleaseEntry:
    """One takedown inside a release."""
    ticket_id: str
    concept: str
    kind: str
    takedown_version: str  # the per-ticket version in the takedown registry: the audit unit
    content_sha256: str
    method: str


@dataclass(frozen=True)
class ReleaseRecord:
    registry_name: str  # the takedowns' registered model; the release's is release_model_name(registry_name)
    base_weights_sha256: str
    entries: tuple[ReleaseEntry, ...]
    reason: str
    actor: str
    note: str = ""
    replaces: str | None = None  # the release version that was production when this one was built
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    weights_sha256: str = ""  # filled by composition

    def __post_init__(self):
        if self.reason not in REASONS:
            raise ValueError(f"release reason {self.reason!r}: one of {', '.join(REASONS)}")
        tickets = [e.ticket_id for e in self.entries]
        if len(set(tickets)) != len(tickets):
            raise ValueError(f"a release holds each ticket once; got {tickets}")

    @property
    def tickets(self) -> list[str]:
        return [e.ticket_id for e in self.entries]

    @property
    def concepts(self) -> list[str]:
        return [e.concept for e in self.entries]

    def with_weights(self, weights_sha256: str) -> "ReleaseRecord":
        return replace(self, weights_sha256=weights_sha256)

    def as_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self), "entries": [asdict(e) for e in self.entries]}

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RELEASE_JSON).write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")
        return folder / RELEASE_JSON

    @classmethod
    def from_dict(cls, data: dict) -> "ReleaseRecord":
        if data.get("format") != FORMAT:
            raise ValueError(f"release record format {data.get('format')!r}, expected {FORMAT!r}")
        fields = {k: v for k, v in data.items() if k not in ("format", "entries")}
        return cls(**fields, entries=tuple(ReleaseEntry(**e) for e in data["entries"]))

    @classmethod
    def load(cls, path: Path) -> "ReleaseRecord":
        path = Path(path)
        return cls.from_dict(json.loads((path / RELEASE_JSON if path.is_dir() else path).read_text()))
