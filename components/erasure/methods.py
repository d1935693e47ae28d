"""One entry point for every method: `erase(pipe, request, config)`; the run config picks the method by name."""
from __future__ import annotations

from .request import ErasureRequest
from .result import ErasureResult


def _lora_ti(pipe, request, config, progress):
    from .lora_ti import erase_lora_ti
    return erase_lora_ti(pipe, request, config, progress)


def _te_ascent(pipe, request, config, progress):
    from .te_ascent import erase_te_ascent
    return erase_te_ascent(pipe, request, config, progress)


def _closed_form(pipe, request, config, progress):
    from .closed_form import erase_closed_form
    return erase_closed_form(pipe, request, config, progress)


METHODS = {"lora_ti": _lora_ti, "te_ascent": _te_ascent, "closed_form": _closed_form}


def erase(pipe, request: ErasureRequest, config, progress: bool = False) -> ErasureResult:
    """Run the method `config.method` (config: run_config.Erasure). The pipeline is left unchanged:
    the returned result is applied or fused explicitly."""
    try:
        method = METHODS[config.method]
    except KeyError:
        raise ValueError(f"unknown erasure method {config.method!r}; choose one of {sorted(METHODS)}") from None
    return method(pipe, request, config, progress)
