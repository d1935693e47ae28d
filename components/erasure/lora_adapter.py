"""Method A's result: a LoRA on the text encoder, in diffusers' format, plus the retrained final layer norm.

`pytorch_lora_weights.safetensors` is written by diffusers' own `save_lora_weights`, with the
adapter metadata (rank, alpha, target modules), so `pipe.load_lora_weights(folder)` loads it at
the right scale when alpha != rank. A LayerNorm cannot be a LoRA, so the final layer norm goes in
`text_encoder_final_layer_norm.safetensors` as replacement values (absent when not trained).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .result import ErasureResult
from .tensors import check_base, fingerprint, get_tensor, set_tensor

LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' default name: load_lora_weights(folder) finds it
NORM_FILE = "text_encoder_final_layer_norm.safetensors"
PREFIX = "text_encoder."


@dataclass
class LoraAdapter(ErasureResult):
    lora: dict[str, torch.Tensor] = field(default_factory=dict)  # "text_encoder.<module>.lora_A/B.weight"
    lora_config: dict = field(default_factory=dict)  # peft LoraConfig fields: r, lora_alpha, target_modules
    norm: dict[str, torch.Tensor] = field(default_factory=dict)  # "text_encoder.<final norm>.weight/bias"

    kind = "text_encoder_lora"
    adapter_name = "lethe_erasure"

    @classmethod
    def from_training(cls, pipe, lora: dict[str, torch.Tensor], lora_config: dict, norm: dict[str, torch.Tensor],
                      **info) -> "LoraAdapter":
        lora = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in lora.items()}
        norm = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in norm.items()}
        modules = sorted(lora_config["target_modules"])
        base = {n: fingerprint(get_tensor(pipe, n)) for n in [f"{PREFIX}{m}.weight" for m in modules] + sorted(norm)}
        return cls(base=base, lora=lora, lora_config={**lora_config, "target_modules": modules}, norm=norm, **info)

    @property
    def scale(self) -> float:
        return float(self.lora_config["lora_alpha"]) / float(self.lora_config["r"])

    def changed_tensors(self) -> list[str]:
        return sorted([f"{PREFIX}{m}.weight" for m in self.lora_config["target_modules"]] + list(self.norm))

    def fused_tensors(self, pipe) -> dict[str, torch.Tensor]:
        """W + (alpha / r) * B @ A for every adapted linear layer (computed in fp32), plus the norm."""
        out = {}
        for m in self.lora_config["target_modules"]:
            w = get_tensor(pipe, f"{PREFIX}{m}.weight").detach().float().cpu()
            a, b = self.lora[f"{PREFIX}{m}.lora_A.weight"], self.lora[f"{PREFIX}{m}.lora_B.weight"]
            out[f"{PREFIX}{m}.weight"] = w + self.scale * (b @ a)
        return {**out, **self.norm}

    def apply(self, pipe) -> None:
        """Load as a peft adapter through diffusers, the way a serving stack loads a LoRA."""
        check_base(pipe, self.base, "LoRA adapter")
        meta = {f"{PREFIX}{k}": v for k, v in self.lora_config.items()}
        type(pipe).load_lora_into_text_encoder(dict(self.lora), network_alphas=None, text_encoder=pipe.text_encoder,
                                               prefix="text_encoder", metadata=meta, adapter_name=self.adapter_name,
                                               _pipeline=pipe)
        for name, value in self.norm.items():
            set_tensor(pipe, name, value)

    def fuse(self, pipe) -> None:
        """Write the adapter into the plain weights of a pipeline without adapters loaded."""
        check_base(pipe, self.base, "LoRA adapter")
        for name, value in self.fused_tensors(pipe).items():
            set_tensor(pipe, name, value)

    def _extra_manifest(self) -> dict:
        return {"lora_config": self.lora_config}

    def _write_weights(self, folder: Path) -> list[str]:
        from diffusers import StableDiffusionPipeline

        StableDiffusionPipeline.save_lora_weights(
            folder, text_encoder_lora_layers={k.removeprefix(PREFIX): v for k, v in self.lora.items()},
            text_encoder_lora_adapter_metadata=dict(self.lora_config), weight_name=LORA_FILE)
        files = [LORA_FILE]
        if self.norm:
            save_file(self.norm, folder / NORM_FILE, metadata={"format": "pt", "lethe_kind": self.kind})
            files.append(NORM_FILE)
        return files

    @classmethod
    def _read_weights(cls, folder: Path, manifest: dict) -> dict:
        norm = load_file(folder / NORM_FILE) if NORM_FILE in manifest["files"] else {}
        return {"lora": load_file(folder / LORA_FILE), "lora_config": manifest["lora_config"], "norm": norm}
