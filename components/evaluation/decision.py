"""The gate's rule as a pure function: `decide(metrics, thresholds) -> Decision`.

Every `max_<metric>` field of the run config's thresholds gates the metric `<metric>`: the value
must be present, a finite number, and at most the limit. A missing or non-finite metric fails
closed: an evaluation that did not measure something cannot promote on it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    metric: str
    value: float | None
    limit: float
    passed: bool
    reason: str


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
    """metric name -> limit, from every `max_<metric>` field of a run_config.Thresholds."""
    fields = thresholds.model_dump() if hasattr(thresholds, "model_dump") else dict(thresholds)
    return {name.removeprefix("max_"): float(limit) for name, limit in fields.items() if name.startswith("max_")}


def _check(metric: str, value, limit: float) -> Check:
    if value is None:
        return Check(metric, None, limit, False, f"{metric}: not measured (a missing metric fails the gate)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return Check(metric, None, limit, False, f"{metric}: {value!r} is not a number")
    if not math.isfinite(number):
        return Check(metric, number, limit, False, f"{metric}: {number} is not a finite number")
    if number > limit:
        return Check(metric, number, limit, False, f"{metric}: {number:.4g} is above the limit {limit:.4g}")
    return Check(metric, number, limit, True, f"{metric}: {number:.4g} <= {limit:.4g}")


def decide(metrics: Mapping[str, float | None], thresholds) -> Decision:
    checks = tuple(_check(metric, metrics.get(metric), limit) for metric, limit in limits_of(thresholds).items())
    return Decision(passed=all(c.passed for c in checks), checks=checks)
