"""compose(base, takedowns) -> the release's weights: every approved takedown in one set of tensors.

Per method (measured in BENCHMARKS.md, "Releases"):
- closed form (C): **one joint solve** over every C concept of the release (seed 002's point, and MACE's:
  per-concept edits added together interfere; on the toy world, circle's and square's C edits summed
  took 56 points off the other shapes' retain accuracy). The solve's inputs are read back from each C
  takedown's own record (its concept prompts, preserve prompts, settings and seed), so the release is
  rebuilt from the registry alone; a preserve prompt that names another concept of the release is left
  out (it would ask the solve to keep what it must erase). C takedowns made with different settings
  cannot share one solve and are refused with the settings that differ.
- text-encoder adapters (A, B): each takedown's change is kept as the difference it makes to the base
  (A's fused LoRA and final norm, B's replacement tensors), and the release adds those differences in
  fp32 in the record's order: W = W_base + sum_i (W_i - W_base).
A tensor that only one takedown changes takes that takedown's value exactly, so a one-takedown release
is bit-identical to its adapter fused into the base. A and B change the text encoder and C the U-Net's
cross-attention projections, so mixed methods compose (their changes add up); whether the concepts then
still stay erased, and nothing else broke, is what the release's verification measures.

The weights hash covers the base's weights hash and every composed tensor (name, dtype, shape, bytes):
rebuilding a release from its record gives the same hash.
"""
from __future__ import annotations

import hashlib

import torch

from ..erasure.result import ErasureResult
from ..erasure.tensors import check_base, get_tensor, tensor_sha256
from ..erasure.weight_delta import WeightDelta
from .record import ReleaseEntry

METHOD = "release"
COMPOSITION = "joint_closed_form+merged_deltas"


class CompositionError(ValueError):
    """A set of takedowns that cannot be composed into one release (the reason says why)."""


def composed_tensors(pipe, takedowns: list[ErasureResult]) -> dict[str, torch.Tensor]:
    """The new value of every tensor some takedown changes, in the pipeline's dtype (cpu). The takedowns'
    bases were checked against `pipe` by compose()."""
    bases: dict[str, torch.Tensor] = {}
    sums: dict[str, torch.Tensor] = {}
    single: dict[str, torch.Tensor] = {}
    count: dict[str, int] = {}
    for result in takedowns:
        for name, value in sorted(result.fused_tensors(pipe).items()):
            if name not in bases:
                bases[name] = get_tensor(pipe, name).detach().to("cpu", torch.float32)
            delta = value.detach().to("cpu", torch.float32) - bases[name]
            sums[name] = sums.get(name, torch.zeros_like(bases[name])) + delta
            single[name], count[name] = value, count.get(name, 0) + 1
    out = {}
    for name, delta in sums.items():
        target = get_tensor(pipe, name)
        value = single[name] if count[name] == 1 else bases[name] + delta
        value = value.detach().to("cpu", target.dtype).contiguous()
        if not torch.isfinite(value).all():
            raise CompositionError(f"{name}: the composed release has non-finite values")
        out[name] = value
    return out


CLOSED_FORM = "closed_form"
# Recorded by method C per takedown but not settings of the solve: its inputs (merged below) and its size.
C_INPUTS = ("seed", "concept_prompts", "preserve_prompts", "erase_columns", "preserve_columns", "anchor_prompt")


def joint_closed_form(pipe, entries: list[ReleaseEntry], takedowns: list[ErasureResult]) -> ErasureResult:
    """One closed-form solve over every concept of the C takedowns, from what each one recorded."""
    from ..config.run_config import ClosedFormParams
    from ..domain.prompt_terms import first_named
    from ..erasure.closed_form import erase_closed_form
    from ..erasure.concept import Concept
    from ..erasure.request import ErasureRequest

    settings = [{k: v for k, v in r.hyperparameters.items() if k not in C_INPUTS} for r in takedowns]
    for entry, other in zip(entries[1:], settings[1:]):
        if other != settings[0]:
            differ = sorted(k for k in set(other) | set(settings[0]) if other.get(k) != settings[0].get(k))
            raise CompositionError(f"ticket {entry.ticket_id}: its closed-form takedown was made with other settings "
                                   f"({', '.join(differ)}) than ticket {entries[0].ticket_id}'s; one joint solve needs "
                                   "the same settings (re-take it down with the release's config)")
    concepts = [Concept(name, e.kind) for e, r in zip(entries, takedowns) for name in r.concepts]
    names = [c.name for c in concepts]
    forget = list(dict.fromkeys(p for r in takedowns for p in r.hyperparameters["concept_prompts"]))
    keep = list(dict.fromkeys(p for r in takedowns for p in r.hyperparameters["preserve_prompts"]
                              if p not in forget and first_named(p, names) is None))
    request = ErasureRequest(concepts=list(dict.fromkeys(concepts)), forget_prompts=forget, retain_prompts=keep,
                             seed=int(takedowns[0].hyperparameters["seed"]))

    class _Settings:  # erase_closed_form reads only config.closed_form
        closed_form = ClosedFormParams(**settings[0])

    return erase_closed_form(pipe, request, _Settings)


def compose(pipe, entries: list[ReleaseEntry], takedowns: list[ErasureResult]) -> WeightDelta:
    """The release as one result over the base (a WeightDelta named after every concept it erases).
    `entries[i]` describes `takedowns[i]`. The base pipeline is not changed."""
    if len(entries) != len(takedowns):
        raise CompositionError(f"{len(entries)} release entries for {len(takedowns)} takedowns")
    for entry, result in zip(entries, takedowns):
        if result.method != entry.method:
            raise CompositionError(f"ticket {entry.ticket_id}: its record says method {entry.method!r}, "
                                   f"the stored takedown was made by {result.method!r}")
    for result in takedowns:
        check_base(pipe, result.base, f"{result.method} takedown of {', '.join(result.concepts)}")
    closed = [i for i, r in enumerate(takedowns) if r.method == CLOSED_FORM]
    parts = list(takedowns)
    if len(closed) > 1:  # one solve for every C concept; the others are merged as differences
        joint = joint_closed_form(pipe, [entries[i] for i in closed], [takedowns[i] for i in closed])
        parts = [joint] + [r for i, r in enumerate(takedowns) if i not in closed]
    values = composed_tensors(pipe, parts)
    return WeightDelta.from_changes(
        pipe, values, method=METHOD, concepts=[c for r in takedowns for c in r.concepts],
        hyperparameters={"composition": COMPOSITION, "closed_form": "joint solve" if len(closed) > 1 else "as taken down",
                         "tickets": [e.ticket_id for e in entries]},
        wall_time_s=0.0)


def weights_sha256(release: WeightDelta, base_weights_sha256: str) -> str:
    """One hash for a release's weights: the base's hash and every changed tensor's content."""
    digest = hashlib.sha256(f"{COMPOSITION}|{base_weights_sha256}|".encode())
    for name in sorted(release.tensors):
        digest.update(f"{name}:{tensor_sha256(release.tensors[name])}|".encode())
    return digest.hexdigest()
