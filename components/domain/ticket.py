"""The takedown ticket: what to erase, from which images, asked by whom, on what legal basis.

A ticket is a YAML or JSON file; its image paths are relative to the ticket's own folder and may
not leave it (a ticket must not be able to read arbitrary files on the worker).
"""
from __future__ import annotations

import os
import unicodedata
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .prompt_templates import CONCEPT_KINDS
from .file_errors import InputFileError, file_problem, load_validated, write_json_schema
from .hashing import file_sha256
from .prompt_terms import first_named

# A ticket dated later than this is a wrong date (or time zone), not clock skew between two machines.
CREATED_AT_FUTURE_TOLERANCE = timedelta(hours=24)

# Characters that change how text reads without being visible in it: control characters (line breaks,
# NUL, escape sequences), line/paragraph separators, and bidirectional overrides ("Trojan source").
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_FREE_TEXT_OK = set("\n\r\t")  # a line break or tab is fine in a requester's name or a legal basis


def hidden_character(text: str, free_text: bool = False) -> str | None:
    """The first character that must not be in `text`, described for people; None if there is none."""
    for i, char in enumerate(text):
        if free_text and char in _FREE_TEXT_OK:
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            kind = "a line break" if char in "\n\r\x0b\x0c\x85\u2028\u2029" else (
                "a bidirectional-text control" if char in _BIDI_CONTROLS else "a control character")
            return f"{kind} (U+{ord(char):04X}) at position {i}"
    return None


# One member per kind in CONCEPT_KINDS (components/domain/prompt_templates.py), named as its value: ConceptKind.object.
ConceptKind = Enum("ConceptKind", [(kind, kind) for kind in CONCEPT_KINDS], type=str, module=__name__)


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

    @field_validator("ticket_id", "concept", "target_model")
    @classmethod
    def _one_line(cls, value: str) -> str:
        hidden = hidden_character(value)
        if hidden:
            raise ValueError(f"{value!r} contains {hidden}; it must be one line of printable text")
        if not value.strip():
            raise ValueError("must not be blank")
        if value != value.strip():
            raise ValueError(f"{value!r} starts or ends with white space; remove it")
        return value

    @field_validator("requester", "legal_basis")
    @classmethod
    def _printable_text(cls, value: str) -> str:
        hidden = hidden_character(value, free_text=True)
        if hidden:
            raise ValueError(f"{value!r} contains {hidden}")
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("images", "forget_prompts", "retain_prompts", "aliases", "paraphrases", "neighbours")
    @classmethod
    def _one_line_entries(cls, entries: list[str]) -> list[str]:
        for i, entry in enumerate(entries):
            hidden = hidden_character(entry)
            if hidden:
                raise ValueError(f"entry {i} {entry!r} contains {hidden}; each entry must be one line of printable text")
        return entries

    @field_validator("created_at")
    @classmethod
    def _not_in_the_future(cls, created: datetime) -> datetime:
        ahead = created - datetime.now(timezone.utc)
        if ahead > CREATED_AT_FUTURE_TOLERANCE:
            raise ValueError(f"{created.isoformat()} is {ahead.total_seconds() / 3600:.0f} h in the future (more than the "
                             f"{CREATED_AT_FUTURE_TOLERANCE.total_seconds() / 3600:.0f} h allowed for clock skew); "
                             "check the date and its time zone")
        return created

    @field_validator("images")
    @classmethod
    def _relative_unique(cls, images: list[str]) -> list[str]:
        for image in images:
            if not image.strip():
                raise ValueError("image paths must not be empty")
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
    def _no_empty_prompts(cls, prompts: list[str], info: ValidationInfo) -> list[str]:
        if any(not p.strip() for p in prompts):
            raise ValueError(f"{'prompts' if info.field_name.endswith('prompts') else 'entries'} must not be empty")
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
    real = Path(os.path.realpath(path))  # realpath, unlike Path.resolve, never raises (symlink loops)
    folder = real.parent
    resolved, problems = [], []
    for i, image in enumerate(ticket.images):
        full = Path(os.path.realpath(folder / image))  # follows symlinks: a link out of the folder is caught too
        if not full.is_relative_to(folder):
            problems.append((f"images[{i}]", f"{image!r} resolves outside the ticket's folder {folder}"))
        elif problem := file_problem(full):  # stat only: opening a FIFO or a device could block for ever
            fix = "; list the image files themselves" if problem.startswith("is a directory") else ""
            problems.append((f"images[{i}]", f"{image!r} {problem} (looked for {full}){fix}"))
        else:
            resolved.append(full)
    if problems:
        raise InputFileError(path, problems)
    return LoadedTicket(ticket=ticket, path=real, image_paths=resolved, sha256=file_sha256(real))


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

