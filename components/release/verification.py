"""Verify a candidate release against its base: every concept it erases, the joint retain set, the near
neighbours, and the recovery attack on the concept the release adds.

One evaluation over a request that holds every concept of the release: its forget set is every way of
asking for any of them, and its retain and neighbour sets name none of them (a retain prompt naming an
earlier concept would ask the release to keep what it must forget). The forget rates are then split by
concept and gated per concept, so a candidate in which an earlier concept came back is rejected with
that concept named. The attack runs on the new concept only: the others were attacked when they were
added; a release that adds nothing (a withdrawal, a rollback's rebuild) runs no attack and is not gated
on it, which its checks say.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..erasure.request import ErasureRequest
from ..evaluation.decision import Check, Decision, bounds_of, decide
from ..evaluation.intervals import Z95, rate_with_interval

FORGET_METRICS = ("forget_detection_rate", "forget_worst_rate")
ATTACK_METRICS = ("attack_success", "attack_control_rate")


@dataclass
class ReleaseVerification:
    evaluation: object  # evaluation.evaluate.EvaluationResult over every concept of the release
    decision: Decision
    per_concept: dict[str, dict]  # concept -> its forget metrics (with 95% upper ends)


def joint_request(requests: list[ErasureRequest], new: list[ErasureRequest]) -> ErasureRequest:
    """Every concept of the release in one request, with every ticket's prompts (images: the new ones')."""
    def union(attr: str, of=requests) -> list:
        return list(dict.fromkeys(p for r in of for p in getattr(r, attr)))

    return ErasureRequest(
        concepts=list(dict.fromkeys(c for r in requests for c in r.concepts)), images=union("images", new),
        forget_prompts=union("forget_prompts"), retain_prompts=union("retain_prompts"),
        paraphrases=union("paraphrases", new), neighbours=union("neighbours"), seed=requests[0].seed)


def concept_metrics(evaluation) -> dict[str, dict]:
    """Per concept: the pooled forget rate over the prompts that ask for it, and its worst prompt."""
    out: dict[str, dict] = {}
    forget = [r for r in evaluation.prompts if r.group == "forget" and r.flags_after is not None]
    z = evaluation.info.get("interval_z", Z95)  # a sequential evaluation's looks widen its intervals
    for concept in dict.fromkeys(c for cs in evaluation.sets.forget.values() for c in cs):
        rows = [r for r in forget if concept in evaluation.sets.forget[r.prompt]]
        if not rows:
            continue
        pooled = rate_with_interval(np.concatenate([r.flags_after for r in rows]), z)
        before = rate_with_interval(np.concatenate([r.flags_before for r in rows]), z) if all(
            r.flags_before is not None for r in rows) else None
        worst = max(rows, key=lambda r: (r.after["high"], r.after["rate"]))
        out[concept.name] = {
            "forget_detection_rate": pooled["rate"], "forget_detection_rate_ci95_high": pooled["high"],
            "forget_detection_rate_before": before["rate"] if before else None,
            "forget_worst_rate": worst.after["rate"], "forget_worst_rate_ci95_high": worst.after["high"],
            "worst_prompt": worst.prompt, "prompts": len(rows)}
    return out


def release_decision(metrics: dict, per_concept: dict[str, dict], thresholds, attacked: bool) -> Decision:
    """The run config's thresholds over the joint metrics, with the forget bars applied to every concept
    on its own (the reason names the concept). Without a new concept the attack is not gated, and a check
    says so."""
    bounds = bounds_of(thresholds)
    checks: list[Check] = []
    for name, m in per_concept.items():
        for metric in FORGET_METRICS:
            if metric in bounds:
                bound, limit = bounds[metric]
                c = decide({metric: m[metric], f"{metric}_ci95_high": m[f"{metric}_ci95_high"]},
                           {f"{bound}_{metric}": limit}).checks[0]
                checks.append(replace(c, metric=f"{name}/{metric}", reason=f"concept '{name}': {c.reason}"
                                      + (f" (worst prompt {m['worst_prompt']!r})" if metric == "forget_worst_rate" else "")))
    rest = {f"{bound}_{metric}": limit for metric, (bound, limit) in bounds.items()
            if metric not in FORGET_METRICS and (attacked or metric not in ATTACK_METRICS)}
    checks += decide(metrics, rest).checks
    if not attacked:
        checks += [Check(metric, None, limit, True, f"{metric}: not gated; this release adds no concept to attack "
                         "(each concept was attacked when its takedown was added)", bound)
                   for metric, (bound, limit) in bounds.items() if metric in ATTACK_METRICS]
    return Decision(passed=all(c.passed for c in checks), checks=tuple(checks))


def verify_release(model, release, requests: list[ErasureRequest], new: list[ErasureRequest], config,
                   progress: bool = False, cache_folder=None) -> ReleaseVerification:
    """model: models.loading.LoadedModel of the base; release: the composed WeightDelta; requests: one per
    takedown in the release (the new ones included); new: the requests of the takedowns this release adds
    (with their images and learned tokens: the recovery attack runs on each)."""
    from ..evaluation.evaluate import evaluate_result

    if not requests:
        raise ValueError("a release without takedowns is the base model: nothing to verify")
    evaluation = evaluate_result(model, release, joint_request(requests, new), config, progress=progress,
                                 cache_folder=cache_folder, attack_requests=list(new))
    per_concept = concept_metrics(evaluation)
    return ReleaseVerification(evaluation, release_decision(evaluation.metrics, per_concept, config.thresholds,
                                                            attacked=bool(new)), per_concept)
