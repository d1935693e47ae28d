"""Pipeline tensors by name ("text_encoder.text_model.final_layer_norm.weight", "unet.…to_k.weight").

Erasure results name the tensors they change this way, check the base they are applied to, and
tests compare whole pipelines tensor by tensor.
"""
from __future__ import annotations

import hashlib

import torch

COMPONENTS = ("text_encoder", "unet", "vae")


class BaseMismatchError(RuntimeError):
    """An erasure result is being applied to a pipeline it was not made from."""


def named_tensors(pipe, components: tuple[str, ...] = COMPONENTS) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the pipeline's models, keyed "component.name" (live tensors)."""
    out: dict[str, torch.Tensor] = {}
    for comp in components:
        for name, tensor in getattr(pipe, comp).state_dict(keep_vars=True).items():
            out[f"{comp}.{name}"] = tensor
    return out


def get_tensor(pipe, name: str) -> torch.Tensor:
    """The live parameter (or buffer) called `name`; AttributeError if the pipeline has none."""
    comp, _, rest = name.partition(".")
    module = getattr(pipe, comp)
    try:
        return module.get_parameter(rest)
    except AttributeError:
        return module.get_buffer(rest)


@torch.no_grad()
def set_tensor(pipe, name: str, value: torch.Tensor) -> None:
    """Overwrite a pipeline tensor in place, in the pipeline's own dtype and device."""
    target = get_tensor(pipe, name)
    if target.shape != value.shape:
        raise BaseMismatchError(f"{name}: shape {tuple(value.shape)} does not fit the pipeline's {tuple(target.shape)}")
    target.copy_(value.to(device=target.device, dtype=target.dtype))


def tensor_sha256(tensor: torch.Tensor) -> str:
    """Content hash of a tensor: dtype, shape and bytes."""
    t = tensor.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def fingerprint(tensor: torch.Tensor) -> dict:
    """What a result remembers about each base tensor it changes, to refuse a wrong base later."""
    return {"sha256": tensor_sha256(tensor), "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape), "norm": float(tensor.detach().double().norm())}


def check_base(pipe, base: dict[str, dict], what: str) -> None:
    """Raise BaseMismatchError unless every tensor matches its fingerprint.

    Same dtype: the bytes must be identical. Another dtype (e.g. an fp16 serving copy of the fp32
    base): the norm must agree to 1%, which still tells one checkpoint from another."""
    problems = []
    for name, fp in base.items():
        try:
            t = get_tensor(pipe, name)
        except AttributeError:
            problems.append(f"{name}: not in this pipeline")
            continue
        if list(t.shape) != fp["shape"]:
            problems.append(f"{name}: shape {list(t.shape)}, expected {fp['shape']}")
        elif str(t.dtype).removeprefix("torch.") == fp["dtype"]:
            if tensor_sha256(t) != fp["sha256"]:
                problems.append(f"{name}: weights differ from the base this {what} was made from")
        elif abs(float(t.detach().double().norm()) - fp["norm"]) > 0.01 * max(fp["norm"], 1e-12):
            problems.append(f"{name}: weights differ from the base this {what} was made from (norm check, {t.dtype})")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BaseMismatchError(f"this {what} does not fit the pipeline: {shown}")
