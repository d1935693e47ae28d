"""The takedown ticket: what to erase, from which images, asked by whom, on what legal basis.

A ticket is a YAML or JSON file; its image paths are relative to the ticket's own folder and may
not leave it (a ticket must not be able to read arbitrary files on the worker).
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from .file_errors import InputFileError, load_validated, write_json_schema
from .hashing import file_sha256
from .prompt_terms import first_named


class ConceptKind(str, Enum):
    object = "object"
    style = "style"
    identity = "identity"
    logo = "logo"
    other = "other"


class Ticket(BaseModel):
    """A takedown request. Field descriptions end up in docs/ticket.schema.json."""
    model_config = ConfigDict(extra="forbid", frozen=True, title="Lethe takedown ticket")

    ticket_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                           description="Your ticket system's id; letters, digits, '.', '_', '-'.")
    concept: str = Field(min_length=1, max_length=100, description="The concept's name as people prompt it, e.g. 'circle'.")
    kind: ConceptKind = Field(description="What sort of concept it is; picks prompt templates.")
    images: list[str] = Field(min_length=1, description="Images showing the concept, relative to the ticket file's folder.")
    forget_prompts: list[str] = Field(default_factory=list, description="Extra prompts that must no longer produce the concept.")
    retain_prompts: list[str] = Field(default_factory=list, description="Extra prompts whose output must not change; "
                                      "they may not name the concept or an alias.")
    aliases: list[str] = Field(default_factory=list, description="Other names people prompt the concept with; "
                               "retain prompts naming one are dropped, and its prompts are part of the forget set.")
    paraphrases: list[str] = Field(default_factory=list, description="Prompts that describe the concept without "
                                   "naming it: the recovery attack tries them on the erased model.")
    neighbours: list[str] = Field(default_factory=list, description="Prompts for things close to the concept that "
                                  "must survive (e.g. other characters of the same studio); gated on their own.")
    requester: str = Field(min_length=1, description="Who asked (person or organisation).")
    legal_basis: str = Field(min_length=1, description="Why, e.g. 'DMCA notice 2026-114' or 'GDPR Art. 17'.")
    created_at: AwareDatetime = Field(description="When the request was made, ISO 8601 with a time zone.")
    target_model: str = Field(min_length=1, description="The base model the ticket is about (registry name or model id).")

    @field_validator("images")
    @classmethod
    def _relative_unique(cls, images: list[str]) -> list[str]:
        for image in images:
            p = Path(image)
            if p.is_absolute() or image.startswith("~"):
                raise ValueError(f"image path {image!r} must be relative to the ticket's folder")
            if ".." in p.parts:
                raise ValueError(f"image path {image!r} leaves the ticket's folder ('..' is not allowed)")
        dupes = sorted({i for i in images if images.count(i) > 1})
        if dupes:
            raise ValueError(f"image paths listed twice: {dupes}")
        return images

    @field_validator("forget_prompts", "retain_prompts", "aliases", "paraphrases", "neighbours")
    @classmethod
    def _no_empty_prompts(cls, prompts: list[str]) -> list[str]:
        if any(not p.strip() for p in prompts):
            raise ValueError("entries must not be empty")
        return prompts

    @model_validator(mode="after")
    def _nothing_kept_names_the_concept(self) -> "Ticket":
        """A prompt that must be kept (or that must avoid the name) but names the concept asks for the
        concept to be kept and gone at once: refuse it, naming the prompt."""
        names = [self.concept, *self.aliases]
        for field in ("retain_prompts", "neighbours", "paraphrases"):
            for i, prompt in enumerate(getattr(self, field)):
                term = first_named(prompt, names)
                if term is not None:
                    what = "the concept" if term == self.concept else "the alias"
                    fix = ("put it in forget_prompts" if field == "paraphrases"
                           else "remove it: the concept cannot be both erased and kept")
                    raise ValueError(f"{field}[{i}] {prompt!r} names {what} {term!r}; {fix}")
        return self


class LoadedTicket(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket: Ticket
    path: Path
    image_paths: list[Path]
    sha256: str  # of the ticket file's bytes: an idempotency key for sweeps


def load_ticket(path: str | Path) -> LoadedTicket:
    """Read and validate a ticket and check that its images exist inside its folder."""
    path = Path(path)
    ticket = load_validated(path, Ticket)
    folder = path.resolve().parent
    resolved, problems = [], []
    for i, image in enumerate(ticket.images):
        full = (folder / image).resolve()  # follows symlinks: a link out of the folder is caught too
        if not full.is_relative_to(folder):
            problems.append((f"images[{i}]", f"{image!r} resolves outside the ticket's folder {folder}"))
        elif not full.is_file():
            problems.append((f"images[{i}]", f"{image!r} does not exist (looked for {full})"))
        else:
            resolved.append(full)
    if problems:
        raise InputFileError(path, problems)
    return LoadedTicket(ticket=ticket, path=path.resolve(), image_paths=resolved,
                        sha256=file_sha256(path))


def content_sha256(loaded: LoadedTicket) -> str:
    """The ticket file and every image's bytes, by name: the same request, whatever folder it sits in.
    Sweeps skip a ticket whose content hash is already registered."""
    import hashlib

    digest = hashlib.sha256(loaded.sha256.encode())
    for name, path in zip(loaded.ticket.images, loaded.image_paths):
        digest.update(f"\0{name}\0{file_sha256(path)}".encode())
    return digest.hexdigest()


def write_ticket_schema(out: Path) -> Path:
    return write_json_schema(Ticket, out)

