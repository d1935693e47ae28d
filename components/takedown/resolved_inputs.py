"""What a takedown run works on, resolved once at its start: the ticket, the config, the base model's identity.

The first step resolves them and every later step receives this record (a typed pipeline artefact),
so the base model's weights are hashed once per run and every step names the same weights.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..models.loading import ModelIdentity, model_identity
from ..config.run_config import RunConfig, load_run_config
from ..domain.ticket import LoadedTicket, load_ticket


class BaseModelRef(BaseModel):
    """models.loading.ModelIdentity as plain data (an artefact a pod on another node can read)."""
    source: str
    revision: str | None
    folder: str
    weights_sha256: str
    files_fingerprint: str

    @classmethod
    def of(cls, identity: ModelIdentity) -> "BaseModelRef":
        return cls(source=identity.source, revision=identity.revision, folder=str(identity.folder),
                   weights_sha256=identity.weights_sha256, files_fingerprint=identity.files_fingerprint)

    def identity(self) -> ModelIdentity:
        return ModelIdentity(source=self.source, revision=self.revision, folder=Path(self.folder),
                             weights_sha256=self.weights_sha256, files_fingerprint=self.files_fingerprint)


class ResolvedInputs(BaseModel):
    ticket_path: str
    config_path: str
    ticket_id: str
    run_key: str  # components.takedown.stages.run_key: the inputs by content, which keys the work folder and the cache
    base: BaseModelRef

    def ticket(self) -> LoadedTicket:
        return load_ticket(self.ticket_path)

    def config(self) -> RunConfig:
        return load_run_config(self.config_path)


def resolve_inputs(ticket_path: str | Path, config_path: str | Path, run_key: str) -> ResolvedInputs:
    """Load the ticket and config and hash the base model's files (the run's one hash of them)."""
    loaded, config = load_ticket(ticket_path), load_run_config(config_path)
    b = config.base_model
    return ResolvedInputs(ticket_path=str(ticket_path), config_path=str(config_path), ticket_id=loaded.ticket.ticket_id,
                          run_key=run_key, base=BaseModelRef.of(model_identity(b.source, b.revision, b.allow_download)))
