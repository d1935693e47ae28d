"""A result stored as the new values of only the tensors it changed (methods B and C).

Stored as replacement values rather than differences, so applying is exact: base + (new - base)
is not bit-equal to new in floating point, the replacement is. Applying and fusing are the same
operation, after checking that the pipeline is the base the result was made from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .result import ErasureResult
from .tensors import check_base, fingerprint, get_tensor, set_tensor

WEIGHTS_FILE = "delta.safetensors"


@dataclass
class WeightDelta(ErasureResult):
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> new value (cpu)

    kind = "weight_delta"

    @classmethod
    def from_changes(cls, pipe, new_values: dict[str, torch.Tensor], **info) -> "WeightDelta":
        """Keep the tensors that really changed; fingerprint their base values in `pipe`."""
        changed, base = {}, {}
        for name, value in new_values.items():
            old = get_tensor(pipe, name).detach()
            if not torch.equal(value.detach().to(old.device, old.dtype), old):
                changed[name] = value.detach().to("cpu").contiguous().clone()
                base[name] = fingerprint(old)
        return cls(base=base, tensors=changed, **info)

    def changed_tensors(self) -> list[str]:
        return sorted(self.tensors)

    def fused_tensors(self, pipe) -> dict[str, torch.Tensor]:
        return dict(self.tensors)

    def apply(self, pipe) -> None:
        check_base(pipe, self.base, f"{self.method} result")
        for name, value in self.tensors.items():
            set_tensor(pipe, name, value)

    def fuse(self, pipe) -> None:
        self.apply(pipe)

    def _write_weights(self, folder: Path) -> list[str]:
        save_file(self.tensors, folder / WEIGHTS_FILE, metadata={"format": "pt", "lethe_kind": self.kind})
        return [WEIGHTS_FILE]

    @classmethod
    def _read_weights(cls, folder: Path, manifest: dict) -> dict:
        return {"tensors": load_file(folder / WEIGHTS_FILE)}
