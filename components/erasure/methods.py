"""One entry point for every method: `erase(pipe, request, config)`; the run config picks the method by name.

Whoever calls it (the pipeline's step, `lethe erase`, a benchmark) gets the same invariant: a result
with non-finite weights or losses is never returned, so it can never be saved or registered.
"""
from __future__ import annotations

import math

from .diverged import TrainingDiverged
from .request import ErasureRequest
from .result import ErasureResult
from .starting_point import StartingPoint


def _lora_ti(pipe, request, config, progress, start=None):
    from .lora_ti import erase_lora_ti
    return erase_lora_ti(pipe, request, config, progress, start)


def _te_ascent(pipe, request, config, progress):
    from .te_ascent import erase_te_ascent
    return erase_te_ascent(pipe, request, config, progress)


def _closed_form(pipe, request, config, progress):
    from .closed_form import erase_closed_form
    return erase_closed_form(pipe, request, config, progress)


METHODS = {"lora_ti": _lora_ti, "te_ascent": _te_ascent, "closed_form": _closed_form}
# Methods whose takedowns are trained on top of the production release (starting_point.py). B has no retain term
# to keep what production draws; C's release is one joint solve over every C concept (release/composition.py).
TRAINS_ON_PRODUCTION = ("lora_ti",)


def erase(pipe, request: ErasureRequest, config, progress: bool = False,
          start: StartingPoint | None = None) -> ErasureResult:
    """Run the method `config.method` (config: run_config.Erasure). The pipeline is left unchanged:
    the returned result is applied or fused explicitly. `start`: a change over `pipe` to train on top of
    (methods in TRAINS_ON_PRODUCTION); the result is still a change over `pipe`."""
    try:
        method = METHODS[config.method]
    except KeyError:
        raise ValueError(f"unknown erasure method {config.method!r}; choose one of {sorted(METHODS)}") from None
    if start is not None:
        if config.method not in TRAINS_ON_PRODUCTION:
            raise ValueError(f"method {config.method!r} trains on the base model only, not on top of a release "
                             f"(methods that do: {', '.join(TRAINS_ON_PRODUCTION)})")
        result = method(pipe, request, config, progress, start)
    else:
        result = method(pipe, request, config, progress)
    check_finite(result, pipe)
    return result


def check_finite(result: ErasureResult, pipe) -> None:
    """Raise TrainingDiverged if fusing `result` into `pipe` would give non-finite weights, or a loss was not finite."""
    import torch

    probe = result.fused_copy(pipe)
    for name in result.changed_tensors():
        component, param = name.split(".", 1)
        if not torch.isfinite(getattr(probe, component).state_dict()[param]).all():
            raise TrainingDiverged(f"{result.method} diverged: {name} has non-finite values; nothing is saved")
    losses = [h.get("loss") for h in result.history if isinstance(h.get("loss"), float)]
    if losses and not all(math.isfinite(v) for v in losses):
        raise TrainingDiverged(f"{result.method} diverged: a training loss was not finite")
