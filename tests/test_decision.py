"""The gate's rule: pass, each single failure, and missing or broken metrics failing closed."""
import math

import pytest

from components.evaluation.decision import decide, limits_of
from components.config.run_config import Thresholds

# The five classic bars; the worst-case, neighbour and collapse bars switched off (None: reported, not gated).
THRESHOLDS = Thresholds(max_forget_detection_rate=0.1, max_retain_clip_drop=0.03, max_retain_accuracy_drop=0.1,
                        max_kid=0.05, max_attack_success=0.5, max_forget_worst_rate=None, max_retain_worst_drop=None,
                        max_neighbour_accuracy_drop=None, max_neighbour_worst_drop=None, min_attack_control_rate=0.9)
GOOD = {"forget_detection_rate": 0.02, "retain_clip_drop": 0.01, "retain_accuracy_drop": 0.0, "kid": 0.004,
        "attack_success": 0.25, "attack_control_rate": 1.0}


def test_every_threshold_gates_its_metric():
    assert set(limits_of(THRESHOLDS)) == set(GOOD) - {"attack_control_rate"}  # limits_of: the max_ bounds
    assert {c.metric for c in decide(GOOD, THRESHOLDS).checks} == set(GOOD)


def test_all_within_limits_passes():
    decision = decide(GOOD, THRESHOLDS)
    assert decision.passed and decision.reasons == [] and len(decision.checks) == 6


def test_the_pessimistic_end_of_an_interval_is_what_is_gated():
    # 0 of 8 forget images: the estimate is 0%, its 95% upper end 32%: a 10% bar cannot pass on 8 images
    decision = decide(GOOD | {"forget_detection_rate": 0.0, "forget_detection_rate_ci95_high": 0.3244}, THRESHOLDS)
    assert not decision.passed
    assert decision.reasons == ["forget_detection_rate: 0 (95% upper bound 0.3244) is above the limit 0.1"]
    check = next(c for c in decision.checks if c.metric == "forget_detection_rate")
    assert check.value == 0.3244 and check.estimate == 0.0
    assert decide(GOOD | {"forget_detection_rate": 0.0, "forget_detection_rate_ci95_high": 0.046}, THRESHOLDS).passed
    broken = decide(GOOD | {"forget_detection_rate_ci95_high": math.nan}, THRESHOLDS)
    assert not broken.passed and "95% bound" in broken.reasons[0]


def test_a_void_recovery_attack_fails_the_gate():
    # the control (the attack on the ORIGINAL model) found the concept in 60% of images: the attack's 0% on the
    # erased model proves nothing, whatever it says
    decision = decide(GOOD | {"attack_success": 0.0, "attack_control_rate": 0.6}, THRESHOLDS)
    assert not decision.passed
    assert decision.reasons == ["attack_control_rate: 0.6 is below the minimum 0.9"]
    assert not decide({k: v for k, v in GOOD.items() if k != "attack_control_rate"}, THRESHOLDS).passed


def test_default_thresholds_gate_the_worst_cases_and_the_neighbours():
    gated = {c.metric for c in decide({}, Thresholds()).checks}
    assert {"forget_worst_rate", "retain_worst_drop", "neighbour_accuracy_drop", "neighbour_worst_drop",
            "attack_control_rate"} <= gated
    assert "collapse_rate" not in gated  # optional: reported, gated only when set
    assert "collapse_rate" in {c.metric for c in decide({}, Thresholds(max_collapse_rate=0.2)).checks}


def test_a_value_equal_to_its_limit_passes():
    assert decide(GOOD | {"kid": 0.05}, THRESHOLDS).passed


@pytest.mark.parametrize("metric,bad", [("forget_detection_rate", 0.11), ("retain_clip_drop", 0.05),
                                        ("retain_accuracy_drop", 0.2), ("kid", 0.06), ("attack_success", 0.9)])
def test_each_single_failure_fails_and_says_which(metric, bad):
    decision = decide(GOOD | {metric: bad}, THRESHOLDS)
    assert not decision.passed
    assert len(decision.reasons) == 1
    assert decision.reasons[0].startswith(f"{metric}: ") and "above the limit" in decision.reasons[0]


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
