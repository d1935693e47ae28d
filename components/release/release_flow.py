"""One release change, end to end: build the candidate on the current production, verify it, register it,
promote it with a compare-and-set, and if production moved meanwhile, do it again on the new production.

Nothing is registered before the candidate has been built and verified, and `production` moves only on a
passing verification of a candidate built on what production is at the moment of the move; a process
killed at any point leaves production as it was (at worst a complete candidate version, pending or
rejected, that nothing serves).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..evaluation.decision import Check, Decision
from ..registry.release_registry import ProductionMoved, release_model_name
from .building import RELEASE_WEIGHTS, Candidate, Takedown, build, release_tags
from .verification import release_decision, verify_release

MAX_ATTEMPTS = 5  # each attempt rebuilds on a production another process moved; more means something is wrong
RELEASE_SUMMARY = "release.json"


@dataclass
class ReleaseOutcome:
    promoted: bool
    version: str | None  # the release version registered (None: nothing was registered)
    candidate: Candidate
    decision: Decision
    report_dir: Path | None
    attempts: int

    def as_dict(self) -> dict:
        return {"promoted": self.promoted, "version": self.version, "tickets": self.candidate.record.tickets,
                "added": self.candidate.added, "removed": self.candidate.removed,
                "replaces": self.candidate.based_on, "reasons": self.decision.reasons, "attempts": self.attempts,
                "weights_sha256": self.candidate.record.weights_sha256, "compose_s": self.candidate.compose_s}


def _identifiers(candidate: Candidate, model) -> dict[str, str]:
    r = candidate.record
    ids = {"release of": r.registry_name, "reason": f"{r.reason} by {r.actor}" + (f" ({r.note})" if r.note else ""),
           "replaces release": candidate.based_on or "none (first release)",
           "tickets": ", ".join(f"{e.ticket_id} ('{e.concept}', {e.method}, takedown v{e.takedown_version})"
                                for e in r.entries) or "none: the base model",
           "added since previous": ", ".join(candidate.added) or "nothing",
           "removed since previous": ", ".join(candidate.removed) or "nothing",
           "weights sha256": r.weights_sha256, "base model": model.source,
           "base weights sha256": r.base_weights_sha256}
    return ids


def _concept_lines(per_concept: dict) -> dict[str, str]:
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.0f}%"
    return {f"concept '{name}'": f"forget {pct(m['forget_detection_rate_before'])} -> {pct(m['forget_detection_rate'])} "
                                 f"(95% upper {pct(m['forget_detection_rate_ci95_high'])}); worst prompt "
                                 f"{m['worst_prompt']!r} {pct(m['forget_worst_rate'])}"
            for name, m in per_concept.items()}


def _evaluated_alone(candidate: Candidate, reused: dict):
    """The new ticket's own evaluation, when the candidate holds that ticket alone (the first release)."""
    if len(candidate.takedowns) == 1 and candidate.takedowns[0].entry.ticket_id in candidate.added:
        return reused.get(candidate.takedowns[0].entry.ticket_id)
    return None


def _per_concept_of(candidate: Candidate, evaluation) -> dict[str, dict]:
    """A one-concept evaluation's forget metrics as the release's per-concept record."""
    m = evaluation.metrics
    info = json.loads((Path(evaluation.report_dir) / "metrics.json").read_text()).get("info", {})
    worst = (info.get("worst_forget_prompt") or {}).get("prompt")
    keys = ("forget_detection_rate", "forget_detection_rate_ci95_high", "forget_detection_rate_before",
            "forget_worst_rate", "forget_worst_rate_ci95_high")
    return {candidate.takedowns[0].entry.concept: {**{k: m.get(k) for k in keys}, "worst_prompt": worst,
                                                   "prompts": len(info.get("prompt_sets", {}).get("forget", []))}}


def verify_and_register(model, candidate: Candidate, new_requests: dict, config, releases, work: Path,
                        progress: bool = False, cache_folder=None, reused: dict | None = None):
    """Verify the candidate, write its report, register it as a pending version aliased `candidate`.
    new_requests: ticket id -> the request of a takedown being added now; reused: ticket id -> its own
    EvaluationSummary (used when the candidate is that ticket's adapter alone)."""
    from ..evaluation.decision import limits_of
    from ..evaluation.report import write_report

    name = release_model_name(candidate.record.registry_name)
    report_dir = work / "report"
    metrics, per_concept = {}, {}
    alone = _evaluated_alone(candidate, reused or {})
    if alone is not None:
        # the release is this one adapter, bit for bit, judged on the same sets and seeds: its evaluation is the release's
        metrics, per_concept = alone.metrics, _per_concept_of(candidate, alone)
        decision = release_decision(metrics, per_concept, config.thresholds, attacked=True)
        shutil.copytree(alone.report_dir, report_dir, dirs_exist_ok=True)
    elif candidate.takedowns:
        # a new ticket's own request carries its images and learned token (the attack); earlier ones their prompts
        requests = [new_requests.get(t.entry.ticket_id, t.request) for t in candidate.takedowns]
        attacked = [new_requests[t] for t in candidate.added if t in new_requests]
        verification = verify_release(model, candidate.release, requests, attacked, config, progress, cache_folder)
        decision, per_concept, metrics = verification.decision, verification.per_concept, verification.evaluation.metrics
        write_report(verification.evaluation, decision, {**_identifiers(candidate, model), **_concept_lines(per_concept)},
                     report_dir, title=f"Lethe release report: {name}", thresholds=limits_of(config.thresholds),
                     images_per_prompt=config.evaluation.report_images_per_prompt)
    else:  # every ticket withdrawn: the release is the base model itself
        decision = Decision(True, (Check("takedowns", 0.0, 0.0, True, "no takedowns left: the release is the base model"),))
        report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / RELEASE_SUMMARY).write_text(json.dumps(
        {"record": candidate.record.as_dict(), "added": candidate.added, "removed": candidate.removed,
         "per_concept": per_concept, "decision": decision.as_dict()}, indent=2, sort_keys=True, default=str) + "\n")
    record_dir = work / "record"
    candidate.record.save(record_dir)
    artefacts = {"record": record_dir, RELEASE_WEIGHTS: candidate.release.save(work / "release"), "report": report_dir}
    version = releases.register(name, artefacts, release_tags(candidate), metrics,
                                description=f"{candidate.record.reason}: {', '.join(candidate.record.tickets) or 'base model'}")
    releases.set_candidate(version)
    return version, decision, report_dir


def change_release(model, config, registry, releases, reason: str, actor: str, work: Path,
                   add: list[Takedown] = (), withdraw: list[str] = (), new_requests: dict | None = None, note: str = "",
                   progress: bool = False, cache_folder=None, reused: dict | None = None) -> ReleaseOutcome:
    """Build, verify, register and (if it passes) promote the release production becomes after this change.
    add: approved takedowns to add; new_requests: their ticket id -> request with images and learned token."""
    registry_name = config.base_model.registry_name
    for attempt in range(1, MAX_ATTEMPTS + 1):
        candidate = build(model.pipeline, model.weights_sha256, registry, releases, registry_name, reason, actor,
                          list(add), list(withdraw), note, config.runtime.seed)
        version, decision, report_dir = verify_and_register(model, candidate, new_requests or {}, config, releases,
                                                            work / f"attempt-{attempt}", progress, cache_folder, reused)
        checks = [c.reason for c in decision.checks]
        if not decision.passed:
            releases.reject(version, decision.reasons, checks)
            return ReleaseOutcome(False, version.version, candidate, decision, report_dir, attempt)
        try:
            releases.promote(version, candidate.based_on, checks)
            return ReleaseOutcome(True, version.version, candidate, decision, report_dir, attempt)
        except ProductionMoved as moved:
            releases.reject(version, [f"superseded: {moved}; rebuilt on the new production"], checks)
    raise RuntimeError(f"production of {release_model_name(registry_name)} kept moving: gave up after "
                       f"{MAX_ATTEMPTS} attempts")


def rollback(releases, registry_name: str, actor: str, why: str, to: str | None = None) -> tuple[str, str]:
    """Move production back to release `to` (default: the release the current production replaced); only to a
    release that passed verification. Recorded on both versions (who, why, when). Returns (from, to)."""
    from ..registry.model_registry import STATUS_APPROVED

    name = release_model_name(registry_name)
    current = releases.production_version(name)
    if current is None:
        raise ValueError(f"{name} has no production release to roll back")
    if to is None:
        to = releases.registry.version_record(name, current)["tags"].get("replaces")
        if not to or to == "none":
            raise ValueError(f"release {current} replaced no earlier release; give --to N")
    record = releases.registry.version_record(name, to)
    if record["status"] != STATUS_APPROVED:
        raise ValueError(f"release {to} is {record['status']}: only a release that passed verification can serve")
    releases.move_production(name, to, expected=current)
    event = {"event": "rollback", "from": current, "to": to, "actor": actor, "why": why}
    releases.record_event(name, to, event)
    releases.record_event(name, current, event)
    return current, to
