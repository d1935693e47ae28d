"""Evaluate an erasure: forget, retain, neighbour and recovery-attack metrics, original vs erased, same seeds.

The prompts come from prompt_sets.evaluation_sets (every way of asking for the concept; a held-out retain
corpus that never names it; near neighbours; per-concept paraphrases). Every prompt is drawn
`images_per_prompt` times (more in a small set: image_counts) by both models from the same starting noise,
so a before/after pair differs only by the erasure. With evaluation.sequential, the sets are drawn in looks and
a prompt stops getting images once the gate's checks that read it are decided (sequential.py); the sets' intervals
are then widened for the number of looks. Metrics (flat names, the ones the gate reads; rates also
carry `_ci95_low`/`_ci95_high`, the 95% Wilson interval, and drops `_ci95_high`, their pessimistic end):

- forget_detection_rate[_before]: share of forget-prompt images in which the detector finds a concept;
- forget_worst_rate[_before]: the same for the worst single forget prompt (one way of asking left intact);
- forget_clip_score[_before]: CLIP score (100 * cos) of those images against the concept's text;
- retain_accuracy[_before], retain_accuracy_drop: the detector agrees with the (held-out) retain prompt;
- retain_worst_drop: the largest drop of a single retain prompt (one unrelated concept wiped out);
- retain_clip_score[_before], retain_clip_drop = (before - after) / before;
- neighbour_accuracy[_before], neighbour_accuracy_drop, neighbour_worst_drop: the same on near neighbours;
- kid (and kid_std), fid (only from FID_MIN_SAMPLES images): original vs erased retain images, CLIP features;
- attack_token_rate: the worst concept rate of the TI restarts against the erased model;
  attack_control_rate: the restarts' TI against the original, the strongest (the first restart's, and a later one's
  only while the earlier ones miss the bar; per concept, and the weakest concept's: the attack is void if it misses);
- attack_paraphrase_rate[_before]: concept rate of the paraphrases;
- attack_success: the worse of the two attack rates on the erased model;
- collapse_rate[_before]: share of forget-prompt images that are blank or noise.
A value that could not be measured is None, which the gate treats as a failure.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..erasure.request import Concept, ErasureRequest
from .collapse import collapse_kinds
from .decision import decide
from .distribution_distance import FID_MIN_SAMPLES, frechet_distance, kernel_inception_distance
from .generation import generate
from .image_counts import attack_images_per_prompt, images_per_set
from .intervals import Z95, drop_with_bound, rate_with_interval
from .prompt_sets import EvaluationSets, evaluation_sets
from .recovery_attack import learn_attack_token, restart_ti_params, token_pipeline
from .sequential import look_counts, looks_z, undecided

RATE_GROUPS = ("forget", "paraphrase", "token")  # rate = concept found; in retain / neighbour: prompt matched


@dataclass
class PromptResult:
    group: str  # forget | retain | neighbour | paraphrase | token (the last two are the recovery attack)
    prompt: str
    measure: str  # what `rate` means: "concept rate" (forget, attack) or "accuracy" (retain, neighbour)
    before: dict  # {"rate", "clip_score", "low", "high", "n"}; empty when not drawn by the original
    after: dict
    images_before: np.ndarray | None = field(default=None, repr=False)
    images_after: np.ndarray | None = field(default=None, repr=False)
    # per image: the concept was found (forget, paraphrase, token) / the image matches its prompt (retain)
    flags_before: np.ndarray | None = field(default=None, repr=False)
    flags_after: np.ndarray | None = field(default=None, repr=False)
    label: str = ""  # shown instead of the prompt where the prompt alone is ambiguous (attack restarts)
    attack_run: int | None = None  # token rows: which TI restart drew them
    attack_concept: str | None = None  # token rows: the concept that restart attacks
    draws_instead: dict = field(default_factory=dict)  # forget rows: what the judge sees on the erased side

    def as_dict(self) -> dict:
        return {"group": self.group, "prompt": self.prompt, "label": self.label or self.prompt,
                "measure": self.measure, "before": self.before, "after": self.after,
                **({"draws_instead": self.draws_instead} if self.draws_instead else {})}


@dataclass
class EvaluationResult:
    metrics: dict[str, float | None]
    prompts: list[PromptResult]
    info: dict
    attack_token: object = None  # the LearnedToken of the strongest restart on the erased model (audit)
    sets: EvaluationSets | None = None

    def as_dict(self) -> dict:
        return {"metrics": self.metrics, "prompts": [p.as_dict() for p in self.prompts], "info": self.info}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _summary(flags, clip_scores, z: float = Z95) -> dict:
    out = {"clip_score": float(np.mean(clip_scores))}
    if flags is None:
        return {**out, "rate": None}
    interval = rate_with_interval(flags, z)
    return {**out, "rate": interval["rate"], "low": interval["low"], "high": interval["high"], "n": interval["n"]}


class _Judge:
    """Scores image sets with the detector and CLIP: (summary, per-image flags); z: the summaries' intervals'."""

    def __init__(self, detector, clip, z: float = Z95):
        self.detector, self.clip, self.z = detector, clip, z

    def concept(self, images: np.ndarray, concepts: list[Concept]) -> tuple[dict, np.ndarray]:
        present = np.any([self.detector.concept_present(images, c) for c in concepts], axis=0)
        clip = np.max([self.clip.clip_scores(images, c.text) for c in concepts], axis=0)
        return _summary(present, clip, self.z), present

    def retain(self, images: np.ndarray, prompt: str, concept: Concept) -> tuple[dict, np.ndarray | None]:
        match = self.detector.matches_prompt(images, prompt, concept)
        match = None if match is None else np.asarray(match, dtype=bool)
        return _summary(match, self.clip.clip_scores(images, prompt), self.z), match

    def draws_instead(self, images: np.ndarray, concept: Concept) -> dict[str, int]:
        collapsed = collapse_kinds(images)
        seen = self.detector.describe(images, concept)
        return dict(Counter(c or s for c, s in zip(collapsed, seen)).most_common())


def _row(group: str, prompt: str, measure: str, score, before, after, label: str = "") -> PromptResult:
    """score(images) -> (summary, flags), applied to both sides; `before` may be None (not drawn)."""
    (sb, fb), (sa, fa) = score(before) if before is not None else ({}, None), score(after)
    return PromptResult(group, prompt, measure, sb, sa, before, after, fb, fa, label)


def _set_rows(sets: EvaluationSets, request: ErasureRequest, judge: _Judge, before: dict, after: dict) -> list[PromptResult]:
    """The forget, retain, neighbour and paraphrase rows of the images drawn so far."""
    first, rows = request.concepts[0], []
    for p, cs in sets.forget.items():
        row = _row("forget", p, "concept rate", lambda im, cs=cs: judge.concept(im, cs), before[p], after[p])
        row.draws_instead = judge.draws_instead(after[p], cs[0])
        rows.append(row)
    for group, group_prompts in (("retain", sets.retain), ("neighbour", sets.neighbours)):
        rows += [_row(group, p, "accuracy", lambda im, p=p: judge.retain(im, p, first), before[p], after[p])
                 for p in group_prompts]
    rows += [_row("paraphrase", p, "concept rate", lambda im: judge.concept(im, request.concepts), before[p], after[p])
             for p in sets.paraphrases]
    return rows


def _draw_sets(original, erased, request, sets: EvaluationSets, plan: list[dict[str, int]], config, judge: _Judge, clip,
               original_cache, draw: dict, failed_before: str | None = None
               ) -> tuple[list[PromptResult], dict[str, int], list[dict], str]:
    """Both models' images of the prompt sets, drawn look by look (plan: sequential.look_counts; one look: the fixed
    design), a prompt drawn again only while sequential.undecided says so, and not after the first look when a check
    measured before the sets (`failed_before`, why) has already failed: (the sets' rows, images per prompt, each
    look's prompts and images, why drawing stopped)."""
    counts, before, after, looks = {}, {p: None for p in plan[0]}, {p: None for p in plan[0]}, []
    grow, stopped = plan[0], "every prompt drawn at its count"
    for k in range(len(plan)):
        for side, pipe, gen in (("original", original, original_cache.generate if original_cache else generate),
                                ("erased", erased, generate)):
            drawn = gen(pipe, list(grow), grow, desc=f"{side} model" + (f", look {k + 1}" if len(plan) > 1 else ""),
                        start={p: counts.get(p, 0) for p in grow}, **draw)
            images = before if side == "original" else after
            for p, new in drawn.items():
                images[p] = new if images[p] is None else np.concatenate([images[p], new])
        looks.append({"prompts": len(grow), "images": sum(n - counts.get(p, 0) for p, n in grow.items()),
                      "images_per_prompt": max(grow.values(), default=0)})
        counts.update(grow)
        rows = _set_rows(sets, request, judge, before, after)
        if k + 1 == len(plan):
            stopped = f"look {k + 1}: the last look, what was undecided drawn at its most" if k else stopped
            break
        if failed_before:
            stopped = f"look {k + 1}: {failed_before} (REJECTED whatever comes next)"
            break
        more, failed = undecided(rows, _metrics(rows, clip, draw["seed"], judge.z, distances=False), config.thresholds,
                                 judge.z)
        grow = {p: plan[k + 1][p] for p in more if plan[k + 1][p] > counts[p]}
        if failed or not grow:
            stopped = (f"look {k + 1}: a check is decided against its bar (REJECTED whatever comes next)" if failed
                       else f"look {k + 1}: every gated check is decided")
            break
    return rows, counts, looks, stopped


def evaluate(original, erased, request: ErasureRequest, config, clip, detector, progress: bool = False,
             original_cache=None, attack_requests: list[ErasureRequest] | None = None) -> EvaluationResult:
    """original / erased: pipelines; config: the RunConfig; clip: ClipFeatures; detector: a PresenceDetector;
    original_cache: an image_cache.OriginalImageCache for the original's images (None: draw them);
    attack_requests: the concepts the recovery attack tries to bring back, one request each (default: `request`;
    a release: the concepts it adds; [] runs no attack)."""
    ev, seed = config.evaluation, config.runtime.seed
    sets = evaluation_sets(request, ev)
    draw = dict(sampling=config.sampling, seed=seed, batch_size=ev.batch_size, progress=progress)
    plan = look_counts(sets, ev)
    z = looks_z(len(plan))
    judge = _Judge(detector, clip, z)
    attack_count = attack_images_per_prompt(ev)
    attack_draw = {**draw, "images_per_prompt": attack_count}

    # The attack first: drawn once, its verdict is final, so one that fails its bar stops the sets at their first look.
    t1 = time.perf_counter()
    attack_rows, attack_token, notes, strongest = [], None, [], -1.0
    for attack_request in [request] if attack_requests is None else attack_requests:
        rows_k, token_k, notes_k = _token_attack(original, erased, attack_request, config, _Judge(detector, clip),
                                                 attack_draw, progress)
        offset = len({r.attack_run for r in attack_rows})
        for r in rows_k:
            r.attack_run += offset  # restarts of every attacked concept compete: the strongest one counts
        rate = float(_pooled(rows_k, "after").mean()) if rows_k else -1.0
        if token_k is not None and rate > strongest:
            attack_token, strongest = token_k, rate
        attack_rows, notes = attack_rows + rows_k, notes + notes_k
    if attack_requests == []:
        notes.append("recovery attack not run: no concept to attack (a release that adds none)")
    attack_s = time.perf_counter() - t1

    t0 = time.perf_counter()
    rows, counts, looks, stopped = _draw_sets(original, erased, request, sets, plan, config, judge, clip,
                                              original_cache, draw, _attack_failed(attack_rows, clip, seed, config))
    generation_s = time.perf_counter() - t0
    drawn_after = sum(counts.values())
    generated = drawn_after + (original_cache.misses if original_cache else drawn_after)
    rows += attack_rows

    metrics = _metrics(rows, clip, seed, z)
    if not sets.retain:
        notes.append("no retain prompts: retain metrics and KID are not measured (the gate fails closed)")
    if not sets.neighbours:
        notes.append("no near neighbours: give the ticket a `neighbours` list (the gate fails closed on neighbour "
                     "metrics it cannot measure)")
    if metrics["attack_control_rate"] is not None and metrics["attack_control_rate"] < config.thresholds.min_attack_control_rate:
        notes.append(f"the recovery attack is void: on the original model its control found the concept in only "
                     f"{100 * metrics['attack_control_rate']:.0f}% of images")
    info = {
        "concepts": [{"name": c.name, "kind": c.kind, "aliases": list(c.aliases)} for c in request.concepts],
        "images_per_prompt": ev.images_per_prompt, "min_images_per_set": ev.min_images_per_set,
        "attack_images_per_prompt": attack_count,
        "images_per_set": images_per_set(sets, counts),
        "sequential": {"looks": looks, "stopped": stopped} if len(plan) > 1 else None,
        "interval_z": z,
        "seed": seed, "sampling": config.sampling.model_dump(),
        "detector": detector.description, "clip_model": clip.source,
        "images_drawn": generated + sum(
            len(r.images_after) + (0 if r.images_before is None else len(r.images_before))
            for r in attack_rows),
        "generation_s": generation_s, "attack_s": attack_s, "notes": notes,
        "original_image_cache": original_cache.as_dict() if original_cache else None,
        "worst_forget_prompt": _worst(rows, "forget", "rate"),
        "worst_retain_prompt": _worst(rows, "retain", "drop", z),
        "worst_neighbour_prompt": _worst(rows, "neighbour", "drop", z),
        "forget_draws_instead": dict(sum((Counter(r.draws_instead) for r in rows if r.group == "forget"),
                                         Counter()).most_common()),
        "prompt_sets": sets.as_dict(),
    }
    info["generation_images_per_s"] = generated / generation_s if generation_s else None
    return EvaluationResult(metrics, rows, info, attack_token, sets)


def _attack_failed(attack_rows, clip, seed: int, config) -> str | None:
    """Why the recovery attack alone already fails the gate (None if it does not, or was not run): its rate over the
    bar, or its control void. The paraphrases, drawn with the sets, can only raise attack_success."""
    if not attack_rows:
        return None
    metrics = _metrics(attack_rows, clip, seed, distances=False)
    failed = [c.reason for c in decide(metrics, config.thresholds).checks
              if c.metric in ("attack_success", "attack_control_rate") and metrics.get(c.metric) is not None
              and not c.passed]
    return "; ".join(failed) or None


def _token_attack(original, erased, request, config, judge, draw, progress):
    """TI restarts on the erased model; rows per prompt. The control (the same restart on the original) is run for
    the first restart, and for each later one while no control so far reached thresholds.min_attack_control_rate:
    the attack is the set of its restarts (the strongest on the erased model counts), so it is valid when one of
    them finds the concept on the original. A restart's TI on the original costs a TI run, so it is run only then."""
    ev, notes = config.evaluation, []
    if len(request.concepts) != 1 or not request.images:
        notes.append("recovery attack by TI not run: it needs one concept and its images "
                     f"(this request has {len(request.concepts)} concepts, {len(request.images)} images)")
        return [], None, notes
    concept, ti = request.concept, config.erasure.textual_inversion
    rows, strongest, control_rates = [], (None, -1.0), []
    for k, restart in enumerate(ev.attack.restarts):
        params = restart_ti_params(ti, restart)
        run_seed = config.runtime.seed + restart.seed_offset
        token = learn_attack_token(erased, concept, request.images, params, ev.attack, run_seed, progress)
        erased_pipe, attack = token_pipeline(erased, token, ev.attack.templates)
        after = generate(erased_pipe, attack.prompts, desc=f"attack {k + 1} on erased model", **draw)
        control = None
        if k == 0 and request.learned_token is not None:  # method A learned it on the original with these images
            control = token_pipeline(original, request.learned_token, ev.attack.templates)
        elif ev.attack.on_original and (k == 0 or max(control_rates, default=1.0) < config.thresholds.min_attack_control_rate):
            control = token_pipeline(original, learn_attack_token(original, concept, request.images, params, ev.attack,
                                                                  run_seed, progress), ev.attack.templates)
        before = generate(control[0], control[1].prompts, desc=f"attack {k + 1} control on original model",
                          **draw) if control else {}
        label = f"TI run {k + 1} (seed {run_seed}, init {params.init_word or 'mean embedding'!r})"
        run_rows = [_row("token", prompt, "concept rate", lambda im: judge.concept(im, [concept]),
                         before[control[1].prompts[i]] if control else None, after[prompt], f"{label}: {prompt}")
                    for i, prompt in enumerate(attack.prompts)]
        for r in run_rows:
            r.attack_run, r.attack_concept = k, concept.name
        if control:
            control_rates.append(float(_pooled(run_rows, "before").mean()))
        rate = float(_pooled(run_rows, "after").mean())
        if rate > strongest[1]:
            strongest = (token, rate)
        rows += run_rows
    if len(control_rates) > 1:
        notes.append(f"the recovery attack's control on {concept.name!r}: restarts run on the original model found it "
                     f"in {', '.join(f'{100 * c:.0f}%' for c in control_rates)} of images; the strongest counts")
    return rows, strongest[0], notes


def _pooled(rows, side: str) -> np.ndarray | None:
    flags = [getattr(r, f"flags_{side}") for r in rows]
    flags = [f for f in flags if f is not None]
    return np.concatenate(flags) if flags else None


def _rate_metrics(m: dict, name: str, rows, sides=("before", "after"), z: float = Z95) -> None:
    """name[_before] with its 95% interval (z: widened for a sequential evaluation's looks), pooled over the rows'
    images."""
    for side in sides:
        key = name if side == "after" else f"{name}_before"
        flags = _pooled(rows, side)
        if flags is None or not len(flags):
            m[key] = None
            continue
        interval = rate_with_interval(flags, z)
        m[key], m[f"{key}_ci95_low"], m[f"{key}_ci95_high"] = interval["rate"], interval["low"], interval["high"]


def _drop_metrics(m: dict, name: str, rows, z: float = Z95) -> None:
    """<name>_accuracy[_before], <name>_accuracy_drop (pooled) and <name>_worst_drop, with pessimistic ends."""
    judged = [r for r in rows if r.flags_after is not None and r.flags_before is not None]
    _rate_metrics(m, f"{name}_accuracy", judged, z=z)
    m[f"{name}_accuracy_drop"] = m[f"{name}_worst_drop"] = None
    if not judged:
        return
    pooled = drop_with_bound(float(_pooled(judged, "before").mean()), _pooled(judged, "after"), z)
    m[f"{name}_accuracy_drop"], m[f"{name}_accuracy_drop_ci95_high"] = pooled["drop"], pooled["high"]
    m[f"{name}_accuracy_drop_ci95_low"] = pooled["low"]
    drops = [drop_with_bound(float(r.flags_before.mean()), r.flags_after, z) for r in judged]
    m[f"{name}_worst_drop"] = max(d["drop"] for d in drops)
    m[f"{name}_worst_drop_ci95_high"] = max(d["high"] for d in drops)


def _control_rate(tokens: list[PromptResult]) -> float | None:
    """Per attacked concept, its strongest restart on the original (the attack is the set of its restarts); over
    concepts, the weakest: one concept's void attack voids the release's."""
    per_concept: dict[str, list[float]] = {}
    for k in dict.fromkeys(r.attack_run for r in tokens):
        run = [r for r in tokens if r.attack_run == k and r.flags_before is not None]
        if run:
            per_concept.setdefault(run[0].attack_concept, []).append(float(_pooled(run, "before").mean()))
    return min(max(rates) for rates in per_concept.values()) if per_concept else None


def _worst(rows, group: str, how: str, z: float = Z95) -> dict | None:
    """The prompt that set a worst-case metric, for the report."""
    judged = [r for r in rows if r.group == group and r.flags_after is not None]
    if not judged:
        return None
    if how == "rate":
        r = max(judged, key=lambda r: (r.after["high"], r.after["rate"]))
        return {"prompt": r.prompt, "rate": r.after["rate"], "ci95_high": r.after["high"]}
    judged = [r for r in judged if r.flags_before is not None]
    if not judged:
        return None
    r = max(judged, key=lambda r: drop_with_bound(r.before["rate"], r.flags_after, z)["high"])
    return {"prompt": r.prompt, "before": r.before["rate"], "after": r.after["rate"]}


def _metrics(rows: list[PromptResult], clip, seed: int, z: float = Z95, distances: bool = True) -> dict[str, float | None]:
    """z: the intervals' of the prompt sets (widened for a sequential evaluation's looks); the attack's TI rows,
    drawn once, keep 95%. distances=False leaves KID and FID unmeasured (None): a look between draws reads only the
    gated rates, and KID's CLIP features of every retain image would be computed there for nothing."""
    def group(name: str) -> list[PromptResult]:
        return [r for r in rows if r.group == name]

    def mean_of(name: str, side: str, key: str) -> float | None:
        return _mean(getattr(r, side).get(key) for r in group(name))

    m: dict[str, float | None] = {}
    forget = group("forget")
    _rate_metrics(m, "forget_detection_rate", forget, z=z)
    for side, key in (("before", "forget_worst_rate_before"), ("after", "forget_worst_rate")):
        sides = [getattr(r, side) for r in forget if getattr(r, side).get("rate") is not None]
        m[key] = max(s["rate"] for s in sides) if sides else None
        m[f"{key}_ci95_high"] = max(s["high"] for s in sides) if sides else None
    m["forget_clip_score_before"] = mean_of("forget", "before", "clip_score")
    m["forget_clip_score"] = mean_of("forget", "after", "clip_score")

    _drop_metrics(m, "retain", group("retain"), z)
    _drop_metrics(m, "neighbour", group("neighbour"), z)
    m["retain_clip_score_before"] = mean_of("retain", "before", "clip_score")
    m["retain_clip_score"] = mean_of("retain", "after", "clip_score")
    b, a = m["retain_clip_score_before"], m["retain_clip_score"]
    m["retain_clip_drop"] = (b - a) / b if b and a is not None else None

    tokens = group("token")
    per_run = []  # each restart's pooled rate on the erased model; the strongest (by its upper end) counts
    for k in dict.fromkeys(r.attack_run for r in tokens):
        run: dict = {}
        _rate_metrics(run, "attack_token_rate", [r for r in tokens if r.attack_run == k], sides=("after",))
        per_run.append(run)
    m["attack_token_rate"] = None
    if per_run:
        m.update(max(per_run, key=lambda run: (run["attack_token_rate_ci95_high"], run["attack_token_rate"])))
    m["attack_control_rate"] = _control_rate(tokens)
    _rate_metrics(m, "attack_paraphrase_rate", group("paraphrase"), z=z)
    # the worst case; with no TI token attack the gate cannot know, so it stays unmeasured
    if m["attack_token_rate"] is None:
        m["attack_success"] = None
    else:
        candidates = [(m["attack_token_rate_ci95_high"], m["attack_token_rate"])]
        if m.get("attack_paraphrase_rate") is not None:
            candidates.append((m["attack_paraphrase_rate_ci95_high"], m["attack_paraphrase_rate"]))
        m["attack_success_ci95_high"], m["attack_success"] = max(candidates)

    for side, key in (("before", "collapse_rate_before"), ("after", "collapse_rate")):
        images = [getattr(r, f"images_{side}") for r in forget if getattr(r, f"images_{side}") is not None]
        if images:
            interval = rate_with_interval([k is not None for k in collapse_kinds(np.concatenate(images))], z)
            m[key], m[f"{key}_ci95_low"], m[f"{key}_ci95_high"] = interval["rate"], interval["low"], interval["high"]
        else:
            m[key] = None

    retain = [r for r in group("retain") if r.images_before is not None]
    m["kid"] = m["kid_std"] = m["fid"] = None
    if distances and retain and sum(len(r.images_before) for r in retain) >= 2:
        # Unit CLIP features scaled to norm sqrt(d): the cubic kernel's x.y/d is then the cosine, the
        # regime KID's kernel was made for (Inception features), whatever the CLIP width. Unscaled, it is
        # ~1 + 3 cos/d: a retain set whose accuracy fell from 100% to 21% moved KID by only 0.005.
        fb, fa = (clip.image_features(np.concatenate([getattr(r, f"images_{s}") for r in retain])).numpy()
                  for s in ("before", "after"))
        fb, fa = fb * np.sqrt(fb.shape[1]), fa * np.sqrt(fa.shape[1])
        kid = kernel_inception_distance(fb, fa, seed=seed)
        m["kid"], m["kid_std"] = kid.mean, kid.std
        if len(fb) >= FID_MIN_SAMPLES:
            m["fid"] = frechet_distance(fb, fa)
    return m


def evaluate_result(model, result, request: ErasureRequest, config, progress: bool = False,
                    cache_folder=None, attack_requests: list[ErasureRequest] | None = None) -> EvaluationResult:
    """Evaluate an ErasureResult against the base it was made from (model: a models.loading.LoadedModel):
    CLIP and the detector load on the model's device, the erased model is a fused copy. With
    `cache_folder`, the original model's images are read from / written to that cache."""
    from .image_cache import OriginalImageCache

    from ..models.loading import resolve_dtype
    from .clip_features import load_clip
    from .detectors import load_detector

    clip = load_clip(config.evaluation.clip_model, model.device, resolve_dtype(config.runtime.dtype))
    detector = load_detector(config.evaluation.detector, clip, model.device)
    cache = OriginalImageCache(cache_folder, model.weights_sha256, model.device, model.dtype) if cache_folder else None
    return evaluate(model.pipeline, result.fused_copy(model.pipeline), request, config, clip, detector, progress, cache,
                    attack_requests)
