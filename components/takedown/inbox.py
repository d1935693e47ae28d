"""The ticket inbox: how a ticket system hands tickets to the scheduled sweep.

An inbox is a folder or an fsspec URL (s3://bucket/inbox on a cluster, so a ticket system outside it
needs only bucket credentials). `submit` checks a ticket at the door (what a takedown checks first)
and copies it with its images into `<inbox>/<ticket_id>-<content sha256[:12]>/`. The images go first
and the ticket file last: a sweep lists ticket files only, so it never sees a half-copied ticket, and the
same content always lands in the same folder, so submitting twice is harmless.
"""
from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..domain.ticket import LoadedTicket, content_sha256, load_ticket

TICKET_SUFFIXES = (".yaml", ".yml", ".json")


def _filesystem(inbox: str):
    import fsspec

    return fsspec.core.url_to_fs(str(inbox))


def is_local(inbox: str | Path) -> bool:
    return "://" not in str(inbox) or str(inbox).startswith("file://")


def submission_folder(loaded: LoadedTicket) -> str:
    return f"{loaded.ticket.ticket_id}-{content_sha256(loaded)[:12]}"


@dataclass(frozen=True)
class Submitted:
    ticket_id: str
    destination: str  # the ticket file in the inbox
    already_there: bool


def submit(ticket_path: str | Path, inbox: str, config=None, config_path: str | Path | None = None) -> Submitted:
    """Validate the ticket and copy it into the inbox. With `config` (a RunConfig, read from `config_path`)
    it gets every check a takedown would make first (components/takedown/admission.py: the ticket against the
    config, the image rules); without, its schema only. Raises InputFileError / ImageValidationError
    before anything is copied."""
    if config is not None:
        from .admission import admit

        loaded = admit(ticket_path, config, config_path or "the run config").loaded
    else:
        loaded = load_ticket(ticket_path)
    fs, root = _filesystem(inbox)
    folder = posixpath.join(root, submission_folder(loaded))
    destination = posixpath.join(folder, loaded.path.name)
    shown = destination if is_local(inbox) else f"{str(inbox).rstrip('/')}/{submission_folder(loaded)}/{loaded.path.name}"
    if fs.exists(destination):
        return Submitted(loaded.ticket.ticket_id, shown, already_there=True)
    for name, image in zip(loaded.ticket.images, loaded.image_paths):
        target = posixpath.join(folder, name)
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.put_file(str(image), target)
    fs.put_file(str(loaded.path), destination)  # last: its presence means the submission is complete
    return Submitted(loaded.ticket.ticket_id, shown, already_there=False)


def ticket_files(inbox: str) -> list[str]:
    """Every ticket file in the inbox (any depth), sorted."""
    fs, root = _filesystem(inbox)
    if not fs.isdir(root):
        raise NotADirectoryError(f"{inbox}: not a folder")
    return sorted(p for p in fs.find(root) if p.endswith(TICKET_SUFFIXES))


def local_copy(inbox: str, staging: Path) -> Path:
    """A local folder with the inbox's tickets: the inbox itself if it is local, else a copy under
    `staging` of every complete submission folder (one already copied is not fetched again)."""
    if is_local(inbox):
        return Path(str(inbox).removeprefix("file://"))
    fs, root = _filesystem(inbox)
    staging.mkdir(parents=True, exist_ok=True)
    for folder in sorted({posixpath.dirname(t) for t in ticket_files(inbox)}):
        relative = posixpath.relpath(folder, root)
        if relative == ".":
            raise ValueError(f"{inbox}: a ticket lies at the inbox's top level; remote inboxes hold one folder "
                             "per ticket (what `lethe submit` writes)")
        if (staging / relative).exists():
            continue
        partial = staging.with_name(staging.name + ".partial") / relative  # outside: sweeps list staging
        shutil.rmtree(partial, ignore_errors=True)
        for remote in fs.find(folder):
            target = partial / posixpath.relpath(remote, folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(target))
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, staging / relative)  # atomic: a crash leaves no half-copied ticket behind
    return staging


def staging_folder(inbox: str, home: Path) -> Path:
    """Where a sweep reads the inbox from: itself if local, else its copy under home/inbox-staged."""
    import hashlib

    return local_copy(inbox, home / "inbox-staged" / hashlib.sha256(str(inbox).encode()).hexdigest()[:16])
