"""A release's text-encoder change as one LoRA file, in diffusers' format and in the kohya key format that
A1111 and ComfyUI load, for serving stacks that apply LoRAs to a stock base model instead of loading a
fused folder.

A release stores new tensor values, not factors (A's LoRAs are merged, B's changes are dense), so each
changed linear layer's difference to the base is factored again: an SVD of W_release - W_base kept to its
numerical rank (for merged LoRAs at most the sum of their ranks), so B @ A reproduces the difference to
float rounding; every layer is padded with zeros to one rank, so one `r` (= alpha, scale 1) fits them all.
A changed LayerNorm cannot be a LoRA: diffusers gets it as replacement values in a file beside the LoRA
(method A's own layout), kohya as `w_norm`/`b_norm` differences (A1111 applies them; ComfyUI's SD1/2 key
map has no entry for the final layer norm and skips them with a warning, so there the LoRA alone is not
the release). Module names are written the way SD checkpoints and LoRAs name them ("text_model.encoder.…"),
whichever layout the installed transformers gives CLIPTextModel (5.x drops `text_model`; diffusers' loader
strips the prefix again when the model has none). A release that changes anything else (the U-Net's
projections of method C, a bias, an embedding) has no LoRA form here: `LoraFileRefused` names the tensors,
and the fused folder serves it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..erasure.lora_adapter import LORA_FILE, NORM_FILE
from ..erasure.tensors import get_tensor

TEXT_ENCODER = "text_encoder."
KOHYA_PREFIX = "lora_te_"
KOHYA_FILE = "lora_kohya.safetensors"


class LoraFileRefused(ValueError):
    """The release changes tensors that a text-encoder LoRA cannot carry (the message names them)."""


@dataclass
class TextEncoderLora:
    rank: int
    down: dict[str, torch.Tensor] = field(default_factory=dict)  # module -> A (rank, in)
    up: dict[str, torch.Tensor] = field(default_factory=dict)  # module -> B (out, rank)
    norms: dict[str, torch.Tensor] = field(default_factory=dict)  # "<module>.weight|bias" -> new value
    norm_diffs: dict[str, torch.Tensor] = field(default_factory=dict)  # the same, minus the base
    max_error: float = 0.0  # largest |B @ A - (W_release - W_base)| over every layer


def _module_kinds(text_encoder) -> dict[str, str]:
    return {name: type(m).__name__ for name, m in text_encoder.named_modules()}


def canonical_module(module: str, text_encoder) -> str:
    """A text-encoder module's name as checkpoints and LoRA files write it ("text_model.encoder.layers.0…")."""
    return module if hasattr(text_encoder, "text_model") else f"text_model.{module}"


def live_module(module: str, text_encoder) -> str:
    """The inverse of canonical_module: the name in the loaded text encoder."""
    return module if hasattr(text_encoder, "text_model") else module.removeprefix("text_model.")


def _factor(difference: torch.Tensor, release_value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, A) with B @ A = difference to float rounding: the SVD kept above the rounding of the release's values."""
    u, s, vh = torch.linalg.svd(difference.double(), full_matrices=False)
    tolerance = max(difference.shape) * torch.finfo(torch.float32).eps * float(torch.linalg.matrix_norm(
        release_value.double(), ord=2))
    keep = max(1, int((s > tolerance).sum()))
    root = s[:keep].sqrt()
    return (u[:, :keep] * root).float(), (root[:, None] * vh[:keep]).float()


def release_lora(release, pipe) -> TextEncoderLora:
    """release: a composed WeightDelta over `pipe` (its base)."""
    kinds = _module_kinds(pipe.text_encoder)
    refused, factors, norms = [], {}, {}
    for name, value in sorted(release.tensors.items()):
        module, _, leaf = name.removeprefix(TEXT_ENCODER).rpartition(".")
        kind = kinds.get(module) if name.startswith(TEXT_ENCODER) else None
        if kind == "Linear" and leaf == "weight":
            difference = value.float() - get_tensor(pipe, name).detach().to("cpu", torch.float32)
            factors[module] = (*_factor(difference, value.float()), difference)
        elif kind == "LayerNorm" and leaf in ("weight", "bias"):
            norms[f"{module}.{leaf}"] = value.detach().to("cpu", torch.float32)
        else:
            refused.append(name)
    if refused:
        raise LoraFileRefused("a text-encoder LoRA cannot carry " + ", ".join(refused[:4])
                              + (f" and {len(refused) - 4} more" if len(refused) > 4 else "")
                              + ": serve the fused diffusers folder")
    if not factors and not norms:
        raise LoraFileRefused("the release changes no text-encoder tensor (it is the base model)")
    rank = max((b.shape[1] for b, _, _ in factors.values()), default=1)
    out = TextEncoderLora(rank)
    for module, (b, a, difference) in factors.items():
        pad, name = rank - b.shape[1], canonical_module(module, pipe.text_encoder)
        out.up[name] = torch.cat([b, b.new_zeros(b.shape[0], pad)], 1).contiguous()
        out.down[name] = torch.cat([a, a.new_zeros(pad, a.shape[1])], 0).contiguous()
        out.max_error = max(out.max_error, float((out.up[name] @ out.down[name] - difference).abs().max()))
    for key, value in norms.items():
        name = canonical_module(key, pipe.text_encoder)
        out.norms[name] = value
        out.norm_diffs[name] = value - get_tensor(pipe, TEXT_ENCODER + key).detach().to("cpu", torch.float32)
    return out


def kohya_name(module: str) -> str:
    """A text-encoder module, canonically named ("text_model.encoder.layers.0.self_attn.q_proj"), as kohya
    names it ("lora_te_text_model_encoder_layers_0_self_attn_q_proj")."""
    return KOHYA_PREFIX + module.replace(".", "_")


def module_of_kohya(name: str, text_encoder) -> str:
    """The inverse of kohya_name, over the text encoder's own modules (underscores inside names make it a
    lookup): the module's name in the loaded text encoder."""
    found = {kohya_name(canonical_module(m, text_encoder)): m for m, _ in text_encoder.named_modules() if m}
    if name not in found:
        raise KeyError(f"{name}: no module of this text encoder is called that in kohya's format")
    return found[name]


def kohya_state_dict(lora: TextEncoderLora) -> dict[str, torch.Tensor]:
    out = {}
    for module in lora.up:
        key = kohya_name(module)
        out[f"{key}.lora_down.weight"] = lora.down[module]
        out[f"{key}.lora_up.weight"] = lora.up[module]
        out[f"{key}.alpha"] = torch.tensor(float(lora.rank))
    for key, diff in lora.norm_diffs.items():
        module, _, leaf = key.rpartition(".")
        out[f"{kohya_name(module)}.{'w_norm' if leaf == 'weight' else 'b_norm'}"] = diff.contiguous()
    return out


def write_lora_files(lora: TextEncoderLora, folder: Path) -> list[str]:
    """diffusers' LoRA (+ the norm file when a norm changed) and the kohya file, in `folder`; their names."""
    from diffusers import StableDiffusionPipeline

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    if lora.up:
        layers = {f"{m}.lora_A.weight": lora.down[m] for m in lora.down}
        layers.update({f"{m}.lora_B.weight": lora.up[m] for m in lora.up})
        StableDiffusionPipeline.save_lora_weights(
            folder, text_encoder_lora_layers=layers, weight_name=LORA_FILE,
            text_encoder_lora_adapter_metadata={"r": lora.rank, "lora_alpha": lora.rank,
                                                # peft matches a target as a name's suffix: both layouts
                                                "target_modules": sorted(m.removeprefix("text_model.") for m in lora.up)})
        files.append(LORA_FILE)
    if lora.norms:
        save_file({TEXT_ENCODER + k: v.contiguous() for k, v in lora.norms.items()}, folder / NORM_FILE,
                  metadata={"format": "pt"})
        files.append(NORM_FILE)
    save_file(kohya_state_dict(lora), folder / KOHYA_FILE, metadata={"ss_network_dim": str(lora.rank),
                                                                     "ss_network_alpha": str(lora.rank)})
    return [*files, KOHYA_FILE]
