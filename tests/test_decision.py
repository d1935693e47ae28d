"""The gate's rule: pass, each single failure, and missing or broken metrics failing closed."""
import math

import pytest

from components.evaluation.decision import decide, limits_of
from components.run_config import Thresholds

THRESHOLDS = Thresholds(max_forget_detection_rate=0.1, max_retain_clip_drop=0.03, max_retain_accuracy_drop=0.1,
                        max_kid=0.05, max_attack_success=0.5)
GOOD = {"forget_detection_rate": 0.02, "retain_clip_drop": 0.01, "retain_accuracy_drop": 0.0, "kid": 0.004,
        "attack_success": 0.25}


def test_every_threshold_gates_its_metric():
    assert set(limits_of(THRESHOLDS)) == set(GOOD)


def test_all_within_limits_passes():
    decision = decide(GOOD, THRESHOLDS)
    assert decision.passed and decision.reasons == [] and len(decision.checks) == 5


def test_a_value_equal_to_its_limit_passes():
    assert decide(GOOD | {"kid": 0.05}, THRESHOLDS).passed


@pytest.mark.parametrize("metric,bad", [("forget_detection_rate", 0.11), ("retain_clip_drop", 0.05),
                                        ("retain_accuracy_drop", 0.2), ("kid", 0.06), ("attack_success", 0.9)])
def test_each_single_failure_fails_and_says_which(metric, bad):
    decision = decide(GOOD | {metric: bad}, THRESHOLDS)
    assert not decision.passed
    assert len(decision.reasons) == 1 and decision.reasons[0].startswith(f"{metric}: ") and "above the limit" in decision.reasons[0]


@pytest.mark.parametrize("broken", [None, math.nan, math.inf, "n/a"])
def test_missing_or_broken_metrics_fail_closed(broken):
    metrics = GOOD | {"attack_success": broken}
    assert not decide(metrics, THRESHOLDS).passed
    without = {k: v for k, v in GOOD.items() if k != "kid"}
    decision = decide(without, THRESHOLDS)
    assert not decision.passed and decision.reasons == ["kid: not measured (a missing metric fails the gate)"]


def test_decision_serialises_for_the_audit_record():
    record = decide(GOOD | {"kid": 0.2}, THRESHOLDS).as_dict()
    kid = next(c for c in record["checks"] if c["metric"] == "kid")
    assert record["passed"] is False and kid["value"] == 0.2 and kid["passed"] is False
