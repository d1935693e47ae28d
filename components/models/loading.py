"""Load any Stable-Diffusion-format pipeline from a local folder or a hub id at a pinned revision.

Offline first: nothing is downloaded unless the caller opts in. The same code loads the shipped
toy world and real SD 1.5 / 2.1 checkpoints. A content hash of the weights goes into lineage.

A takedown hashes the weights once (its ResolvedInputs carry the identity); every later load checks
only a cheap fingerprint of the files (names, sizes, mtimes) against it, and a process loads a given
model once (LOADED), so a step that asks twice gets the same pipeline back.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..domain.hashing import file_sha256

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
# Files that define a pipeline's behaviour: configs, tokenizer files, weights.
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


class ModelLoadError(RuntimeError):
    """A base model could not be found or loaded; the message says what to do."""


@dataclass
class LoadedModel:
    pipeline: object  # diffusers.StableDiffusionPipeline
    source: str  # local folder or hub id, as asked for
    revision: str | None
    folder: Path  # where the files were read from
    weights_sha256: str
    device: str
    dtype: str


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was asked for but CUDA is not available on this machine")
    return device


def resolve_dtype(dtype: str) -> torch.dtype:
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ModelLoadError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}") from None


def resolve_folder(source: str | Path, revision: str | None = None, allow_download: bool = False) -> Path:
    """A local folder as is; a hub id through the local hub cache (or a download if allowed)."""
    path = Path(source).expanduser()
    if path.exists():
        if not (path / "model_index.json").exists():
            raise ModelLoadError(f"{path} is not a diffusers pipeline folder (no model_index.json)")
        return path
    if str(source).startswith((".", "/", "~")) or str(source).count("/") != 1:
        raise ModelLoadError(f"base model {source!r}: no such folder, and it is not a hub id of the form 'org/name'")
    if not revision:
        raise ModelLoadError(f"hub model {source!r} needs a pinned revision (a commit hash) for reproducible lineage")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(str(source), revision=revision, local_files_only=not allow_download,
                                   allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"],
                                   ignore_patterns=["*.fp16.*", "*non_ema*", "safety_checker/*", "*.ckpt"])
    except Exception as err:  # the hub client raises several types for "not in cache / offline"
        how = "" if allow_download else " (downloads are off: set base_model.allow_download or pre-fill the hub cache)"
        raise ModelLoadError(f"hub model {source!r} at revision {revision!r} is not available{how}: {err}") from err
    return Path(folder)


def weights_sha256(folder: Path) -> str:
    """sha256 over (relative path, file sha256) of every config, tokenizer and weight file."""
    outer = hashlib.sha256()
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        outer.update(f"{file.relative_to(folder).as_posix()}\0{file_sha256(file)}\n".encode())
    return outer.hexdigest()


def files_fingerprint(folder: Path) -> str:
    """sha256 over (relative path, size, mtime) of the hashed files: notices a changed model without reading it."""
    outer = hashlib.sha256()
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        stat = file.stat()
        outer.update(f"{file.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return outer.hexdigest()


@dataclass
class ModelIdentity:
    """What lineage names a base model by, read from its files without loading it (no device needed)."""
    source: str
    revision: str | None
    folder: Path
    weights_sha256: str
    files_fingerprint: str = ""  # files_fingerprint(folder) when the hash was taken


def model_identity(source: str | Path, revision: str | None = None, allow_download: bool = False) -> ModelIdentity:
    folder = resolve_folder(source, revision, allow_download)
    fingerprint = files_fingerprint(folder)
    return ModelIdentity(source=str(source), revision=revision, folder=folder, weights_sha256=weights_sha256(folder),
                         files_fingerprint=fingerprint)


def check_unchanged(identity: ModelIdentity) -> None:
    """Raise if the model's files changed since `identity` was hashed: its hash would name other weights."""
    if files_fingerprint(identity.folder) != identity.files_fingerprint:
        raise ModelLoadError(f"base model {identity.source!r} ({identity.folder}) changed since this run hashed it; "
                             "run the takedown again so that its lineage names the weights it uses")


def load_pipeline(source: str | Path, revision: str | None = None, device: str = "cpu", dtype: str = "float32",
                  allow_download: bool = False, identity: ModelIdentity | None = None) -> LoadedModel:
    """A freshly loaded pipeline on `device`, the caller's to change. With `identity` (model_identity, taken
    earlier in the run) the weights are not hashed again, only checked unchanged."""
    if identity is None:
        identity = model_identity(source, revision, allow_download)
    else:
        check_unchanged(identity)
    return _load(source, revision, identity, resolve_device(device), resolve_dtype(dtype))


# One pipeline per (folder, revision, weights hash, device, dtype) per process: what a step loads once.
SHARED: dict[tuple, LoadedModel] = {}


def pipeline_with(pipe, **replaced):
    """A new pipeline of `pipe`'s class over its components with `replaced` swapped in (the rest shared,
    `pipe` unchanged), its progress bar off: what evaluation draws with (a sampler, a learned token, an erasure)."""
    components = {**pipe.components, **replaced}
    view = type(pipe)(**components, requires_safety_checker=components.get("safety_checker") is not None)
    view.set_progress_bar_config(disable=True)
    return view


def shared_pipeline(identity: ModelIdentity, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """The process's one copy of the model: every stage reads it and none changes it in place (erasures
    return results, evaluations fuse into copies), so a step that asks again loads nothing."""
    check_unchanged(identity)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    key = (str(identity.folder), identity.revision, identity.weights_sha256, torch_device, str(torch_dtype))
    if key not in SHARED:
        SHARED[key] = _load(identity.source, identity.revision, identity, torch_device, torch_dtype)
    return SHARED[key]


def _load(source, revision, identity: ModelIdentity, torch_device: str, torch_dtype) -> LoadedModel:
    from diffusers import StableDiffusionPipeline

    folder = identity.folder
    try:
        # The safety checker would black out images and hide what the evaluation must see.
        pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=torch_dtype, local_files_only=True,
                                                       safety_checker=None, requires_safety_checker=False)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load a Stable Diffusion pipeline from {folder}: {err}") from err
    pipe = pipe.to(torch_device)
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipeline=pipe, source=str(source), revision=revision, folder=folder,
                       weights_sha256=identity.weights_sha256, device=torch_device, dtype=str(torch_dtype).split(".")[-1])
