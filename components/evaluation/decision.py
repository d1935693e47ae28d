"""The gate's rule as a pure function: `decide(metrics, thresholds) -> Decision`.

Every `max_<metric>` field of the run config's thresholds gates the metric `<metric>` from above, every
`min_<metric>` from below; a field set to None is not gated. Where the evaluation measured a 95% interval
(`<metric>_ci95_low` / `_ci95_high`), the gate compares its pessimistic end: the upper end against a
maximum, so that 0 concept images out of 8 (upper end 32%) cannot pass a 10% bar. The `min_` thresholds
(the attack's control) compare the point estimate: they check that a test was able to see anything, not
a safety claim. A missing or non-finite value fails closed: an evaluation that did not measure something
cannot promote on it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

HIGH, LOW = "_ci95_high", "_ci95_low"


@dataclass(frozen=True)
class Check:
    metric: str
    value: float | None  # what was compared: the pessimistic end where there is one
    limit: float
    passed: bool
    reason: str
    bound: str = "max"  # max | min
    estimate: float | None = None  # the point estimate, when `value` is an interval's end


@dataclass(frozen=True)
class Decision:
    passed: bool
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        """Why it failed, one line per failed check (empty when it passed)."""
        return [c.reason for c in self.checks if not c.passed]

    def as_dict(self) -> dict:
        return {"passed": self.passed, "reasons": self.reasons,
                "checks": [c.__dict__ for c in self.checks]}


def limits_of(thresholds) -> dict[str, float]:
    """metric name -> limit, from every set `max_<metric>` field of a run_config.Thresholds."""
    return {metric: limit for metric, (bound, limit) in bounds_of(thresholds).items() if bound == "max"}


def bounds_of(thresholds) -> dict[str, tuple[str, float]]:
    """metric name -> ("max" | "min", limit), for every set `max_`/`min_` field."""
    fields = thresholds.model_dump() if hasattr(thresholds, "model_dump") else dict(thresholds)
    out = {}
    for name, limit in fields.items():
        bound = name[:3]
        if bound in ("max", "min") and name[3:4] == "_" and limit is not None:
            out[name[4:]] = (bound, float(limit))
    return out


def _number(value) -> float | str:
    """A finite float, or why it is not one."""
    if value is None:
        return "not measured (a missing metric fails the gate)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number"
    return number if math.isfinite(number) else f"{number} is not a finite number"


def _check(metric: str, metrics: Mapping, bound: str, limit: float) -> Check:
    estimate = _number(metrics.get(metric))
    if isinstance(estimate, str):
        return Check(metric, None, limit, False, f"{metric}: {estimate}", bound)
    end_key = metric + (HIGH if bound == "max" else LOW)
    if bound == "max" and end_key in metrics:
        value = _number(metrics[end_key])
        if isinstance(value, str):
            return Check(metric, None, limit, False, f"{metric}: its 95% bound {value}", bound, estimate)
        shown = f"{estimate:.4g} (95% upper bound {value:.4g})"
    else:
        value, shown = estimate, f"{estimate:.4g}"
    if bound == "max" and value > limit:
        return Check(metric, value, limit, False, f"{metric}: {shown} is above the limit {limit:.4g}", bound, estimate)
    if bound == "min" and value < limit:
        return Check(metric, value, limit, False, f"{metric}: {shown} is below the minimum {limit:.4g}", bound, estimate)
    sign = "<=" if bound == "max" else ">="
    return Check(metric, value, limit, True, f"{metric}: {shown} {sign} {limit:.4g}", bound, estimate)


def decide(metrics: Mapping[str, float | None], thresholds) -> Decision:
    checks = tuple(_check(metric, metrics, bound, limit) for metric, (bound, limit) in bounds_of(thresholds).items())
    return Decision(passed=all(c.passed for c in checks), checks=checks)
