"""Sequential evaluation: draw the gated sets in looks, and stop drawing what the gate has already decided.

A look's per-prompt counts are cumulative (images 0..n-1 of a prompt, generation.image_seed), so a look only
adds images. After each look but the last, a prompt gets the next look's images only while a gated check that
reads it is undecided, i.e. its interval holds its bar: the worst forget prompt's rate and the worst retain
and neighbour drops extend that prompt alone; a set's pooled rate or drop extends every prompt of the set.
A prompt whose every check is decided stops; once any check is decided against its bar, the verdict is
REJECTED whatever comes next, and nothing more is drawn.

Why it is still a 95% statement: looking L times and stopping at the first pass would let a rate that is
over its bar pass more often than one look does. Each look's interval is therefore at 1 - 0.05 / L
(Bonferroni over the looks): z = 2.24 for two looks, 2.39 for three. The chance that some look passes a rate
that is over its bar stays within the 2.5% of a single 95% look, however the looks fall out.
"""
from __future__ import annotations

from statistics import NormalDist

from .decision import limits_of
from .image_counts import images_per_prompt
from .intervals import drop_with_bound
from .prompt_sets import EvaluationSets

# per-prompt checks: group -> (metric the gate bounds, what is bounded)
PER_PROMPT = {"forget": ("forget_worst_rate", "rate"), "retain": ("retain_worst_drop", "drop"),
              "neighbour": ("neighbour_worst_drop", "drop")}
# pooled checks: group -> [(metric as evaluated, the threshold it is held to)]
POOLED = {"forget": [("forget_detection_rate", "forget_detection_rate"), ("collapse_rate", "collapse_rate")],
          "retain": [("retain_accuracy_drop", "retain_accuracy_drop")],
          "neighbour": [("neighbour_accuracy_drop", "neighbour_accuracy_drop")],
          "paraphrase": [("attack_paraphrase_rate", "attack_success")]}


def looks_z(looks: int) -> float:
    """The two-sided z of each look's interval: 95% for one look, 1 - 0.05 / looks for several."""
    return NormalDist().inv_cdf(1 - 0.05 / (2 * looks))


def look_counts(sets: EvaluationSets, ev) -> list[dict[str, int]]:
    """ev: the Evaluation config. Per look, prompt -> images drawn of it by then (cumulative). One look (the fixed
    design) unless ev.sequential is set; then the last look draws at least the fixed design's count."""
    fixed = images_per_prompt(sets, ev.images_per_prompt, ev.min_images_per_set)
    if ev.sequential is None:
        return [fixed]
    *early, last = ev.sequential.images_per_prompt
    final = {p: max(last, n) for p, n in fixed.items()}
    return [{p: min(n, final[p]) for p in final} for n in early] + [final]


def _outcome(low: float, high: float, limit: float) -> str | None:
    """'pass' / 'fail' once the interval lies on one side of a maximum; None while it holds it."""
    return "pass" if high <= limit else "fail" if low > limit else None


def undecided(rows, metrics: dict, thresholds, z: float) -> tuple[set[str], bool]:
    """(prompts to draw more of, whether a check is already decided against its bar). rows: evaluate's
    PromptResults of the sets; metrics: evaluate's metrics over them, at the same z."""
    limits, grow, failed = limits_of(thresholds), set(), False
    for group, (metric, kind) in PER_PROMPT.items():
        if metric not in limits:
            continue
        for r in rows:
            if r.group != group or r.flags_after is None or (kind == "drop" and r.flags_before is None):
                continue
            if kind == "rate":
                low, high = r.after["low"], r.after["high"]
            else:
                d = drop_with_bound(float(r.flags_before.mean()), r.flags_after, z)
                low, high = d["low"], d["high"]
            outcome = _outcome(low, high, limits[metric])
            failed |= outcome == "fail"
            if outcome is None:
                grow.add(r.prompt)
    for group, checks in POOLED.items():
        prompts = [r.prompt for r in rows if r.group == group]
        for metric, threshold in checks:
            if threshold not in limits or metrics.get(metric) is None:
                continue  # not gated, or not measurable: more images would not change that
            outcome = _outcome(metrics[f"{metric}_ci95_low"], metrics[f"{metric}_ci95_high"], limits[threshold])
            failed |= outcome == "fail"
            if outcome is None:
                grow.update(prompts)
    return (set() if failed else grow), failed
