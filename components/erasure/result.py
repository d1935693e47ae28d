"""What every erasure method returns: a change to a pipeline that can save, load, apply and fuse itself.

A saved result is a self-describing folder (like a diffusers model folder): `lethe_erasure.json`
says which method made it, for which concepts, with which settings, which tensors it changes
and the sha256 of every weight file; the weights are safetensors only. Loading (result_kinds.load_result)
verifies the hashes.
"""
from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..domain.hashing import file_sha256
from ..models.loading import pipeline_with

MANIFEST = "lethe_erasure.json"
FORMAT = "lethe-erasure/1"


class ArtefactError(RuntimeError):
    """A saved result folder is missing, incomplete, tampered with or not ours."""


@dataclass
class ErasureResult(ABC):
    method: str  # run-config name of the method that made it
    concepts: list[str]
    hyperparameters: dict
    wall_time_s: float
    base: dict[str, dict]  # tensor name -> fingerprint of the base tensor it changes
    history: list[dict] = field(default_factory=list)  # per-step losses, for the report

    kind: ClassVar[str]  # how the weights are stored; picks the class on load (result_kinds.RESULT_KINDS)

    @abstractmethod
    def changed_tensors(self) -> list[str]:
        """Names ("component.param") of the base tensors that fusing this result overwrites."""

    @abstractmethod
    def fused_tensors(self, pipe) -> dict:
        """The new value of every tensor in changed_tensors() once fused into `pipe` (cpu tensors): what a
        release composes."""

    @abstractmethod
    def apply(self, pipe) -> None:
        """Attach the change to a pipeline the way a serving stack would load it."""

    @abstractmethod
    def fuse(self, pipe) -> None:
        """Write the change into the pipeline's own weights: the artefact that is released."""

    def fused_copy(self, pipe):
        """A new pipeline with this change fused in; `pipe` is left as it is. Only the components the
        change touches are copied (the rest is shared), so an evaluation can hold both models at once."""
        touched = {name.split(".", 1)[0] for name in self.changed_tensors()} | {"scheduler"}  # schedulers keep state
        erased = pipeline_with(pipe, **{name: copy.deepcopy(module) for name, module in pipe.components.items()
                                        if name in touched})
        self.fuse(erased)
        return erased

    @abstractmethod
    def _write_weights(self, folder: Path) -> list[str]:
        """Write the safetensors files; return their names."""

    @classmethod
    @abstractmethod
    def _read_weights(cls, folder: Path, manifest: dict) -> dict:
        """Read the safetensors files back into constructor keyword arguments."""

    def _extra_manifest(self) -> dict:
        return {}

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = self._write_weights(folder)
        manifest = {
            "format": FORMAT, "kind": self.kind, "method": self.method, "concepts": self.concepts,
            "hyperparameters": self.hyperparameters, "wall_time_s": self.wall_time_s,
            "changed_tensors": self.changed_tensors(), "base": self.base, "history": self.history,
            "files": {name: file_sha256(folder / name) for name in files}, **self._extra_manifest(),
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return folder
