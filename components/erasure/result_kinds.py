"""Which class loads a saved result: the manifest's `kind` mapped to the ErasureResult subclass that stores it.

Kept apart from result.py so that the base class never imports its subclasses; a new kind of result
is added to RESULT_KINDS here.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..domain.hashing import file_sha256
from .lora_adapter import LoraAdapter
from .result import FORMAT, MANIFEST, ArtefactError, ErasureResult
from .weight_delta import WeightDelta

RESULT_KINDS: dict[str, type[ErasureResult]] = {cls.kind: cls for cls in (LoraAdapter, WeightDelta)}


def load_result(folder: str | Path) -> ErasureResult:
    """Load a saved result, refusing it if any weight file is missing or its sha256 differs."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtefactError(f"{folder}: no {MANIFEST}; not a saved Lethe erasure result")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ArtefactError(f"{path}: not valid JSON ({err})") from err
    if manifest.get("format") != FORMAT:
        raise ArtefactError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    cls = RESULT_KINDS.get(manifest.get("kind"))
    if cls is None:
        raise ArtefactError(f"{path}: unknown kind {manifest.get('kind')!r}")
    for name, digest in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise ArtefactError(f"{file}: listed in {MANIFEST} but missing")
        if file_sha256(file) != digest:
            raise ArtefactError(f"{file}: sha256 differs from {MANIFEST}; the file was changed after saving")
    common = {k: manifest[k] for k in ("method", "concepts", "hyperparameters", "wall_time_s", "base", "history")}
    return cls(**common, **cls._read_weights(folder, manifest))
