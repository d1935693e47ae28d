"""Evaluate an erasure: forget, retain and recovery-attack metrics, original vs erased, same seeds.

Every prompt is drawn `images_per_prompt` times by both models from the same starting noise, so a
before/after pair differs only by the erasure. Metrics (flat names, the ones the gate reads):

- forget_detection_rate[_before]: fraction of forget-prompt images where the detector finds a concept;
- forget_clip_score[_before]: CLIP score (100 * cos) of those images against the concept's text;
- retain_clip_score[_before], retain_clip_drop = (before - after) / before, on the retain prompts;
- retain_accuracy[_before], retain_accuracy_drop = before - after: the detector agrees with the prompt;
- kid (and kid_std), fid (only from FID_MIN_SAMPLES images): original vs erased retain images, CLIP features;
- attack_token_rate[_before]: concept rate of a TI token learned on the erased [original] model;
- attack_paraphrase_rate[_before]: concept rate of the configured paraphrases;
- attack_success: the worse of the two attack rates on the erased model.
A value that could not be measured is None, which the gate treats as a failure.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..erasure.request import Concept, ErasureRequest
from .distribution_distance import FID_MIN_SAMPLES, frechet_distance, kernel_inception_distance
from .generation import generate
from .recovery_attack import learn_attack_token, token_pipeline


@dataclass
class PromptResult:
    group: str  # forget | retain | paraphrase | token (the last two are the recovery attack)
    prompt: str
    measure: str  # what `rate` means: "concept rate" (forget, attack) or "accuracy" (retain)
    before: dict  # {"rate": float | None, "clip_score": float | None}; empty when not drawn by the original
    after: dict
    images_before: np.ndarray | None = field(default=None, repr=False)
    images_after: np.ndarray | None = field(default=None, repr=False)
    # per image: the concept was found (forget, paraphrase, token) / the image matches its prompt (retain)
    flags_before: np.ndarray | None = field(default=None, repr=False)
    flags_after: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {"group": self.group, "prompt": self.prompt, "measure": self.measure,
                "before": self.before, "after": self.after}


@dataclass
class EvaluationResult:
    metrics: dict[str, float | None]
    prompts: list[PromptResult]
    info: dict
    attack_token: object = None  # the LearnedToken found on the erased model (an artefact for the audit)

    def as_dict(self) -> dict:
        return {"metrics": self.metrics, "prompts": [p.as_dict() for p in self.prompts], "info": self.info}


def forget_targets(request: ErasureRequest, templates: list[str]) -> dict[str, list[Concept]]:
    """Forget prompt -> the concepts it names: each template filled with each concept's name, then the
    request's own forget prompts (which may name any of them)."""
    targets: dict[str, list[Concept]] = {}
    for concept in request.concepts:
        for template in templates:
            targets.setdefault(template.format(concept=concept.name), []).append(concept)
    for prompt in request.forget_prompts:
        targets.setdefault(prompt, list(request.concepts))
    return targets


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


class _Judge:
    """Scores image sets with the detector and CLIP: (summary, per-image flags)."""

    def __init__(self, detector, clip):
        self.detector, self.clip = detector, clip

    def concept(self, images: np.ndarray, concepts: list[Concept]) -> tuple[dict, np.ndarray]:
        present = np.any([self.detector.concept_present(images, c) for c in concepts], axis=0)
        clip = np.max([self.clip.clip_scores(images, c.text) for c in concepts], axis=0)
        return {"rate": float(present.mean()), "clip_score": float(clip.mean())}, present

    def retain(self, images: np.ndarray, prompt: str, concept: Concept) -> tuple[dict, np.ndarray | None]:
        match = self.detector.matches_prompt(images, prompt, concept)
        return {"rate": None if match is None else float(np.mean(match)),
                "clip_score": float(self.clip.clip_scores(images, prompt).mean())}, match


def _row(group: str, prompt: str, measure: str, score, before, after) -> PromptResult:
    """score(images) -> (summary, flags), applied to both sides; `before` may be None (not drawn)."""
    (sb, fb), (sa, fa) = score(before) if before is not None else ({}, None), score(after)
    return PromptResult(group, prompt, measure, sb, sa, before, after, fb, fa)


def evaluate(original, erased, request: ErasureRequest, config, clip, detector, progress: bool = False) -> EvaluationResult:
    """original / erased: pipelines; config: the RunConfig; clip: ClipFeatures; detector: a PresenceDetector."""
    ev, seed = config.evaluation, config.runtime.seed
    judge = _Judge(detector, clip)
    targets = forget_targets(request, ev.forget_templates)
    retain = list(dict.fromkeys([*request.retain_prompts, *ev.retain_prompts]))
    paraphrases = list(dict.fromkeys(ev.paraphrases))
    prompts = [*targets, *retain, *paraphrases]
    draw = dict(images_per_prompt=ev.images_per_prompt, sampling=config.sampling, seed=seed,
                batch_size=ev.batch_size, progress=progress)

    t0 = time.perf_counter()
    before = generate(original, prompts, desc="original model", **draw)
    after = generate(erased, prompts, desc="erased model", **draw)
    generation_s = time.perf_counter() - t0
    generated = 2 * len(prompts) * ev.images_per_prompt
    first = request.concepts[0]
    rows = [_row("forget", p, "concept rate", lambda im, cs=cs: judge.concept(im, cs), before[p], after[p])
            for p, cs in targets.items()]
    rows += [_row("retain", p, "accuracy", lambda im, p=p: judge.retain(im, p, first), before[p], after[p])
             for p in retain]
    rows += [_row("paraphrase", p, "concept rate", lambda im: judge.concept(im, request.concepts), before[p], after[p])
             for p in paraphrases]

    t1 = time.perf_counter()
    attack_rows, attack_token, notes = _token_attack(original, erased, request, config, judge, draw, progress)
    rows += attack_rows
    attack_s = time.perf_counter() - t1

    retain_before = np.concatenate([before[p] for p in retain]) if retain else None
    retain_after = np.concatenate([after[p] for p in retain]) if retain else None
    metrics = _metrics(rows, clip, retain_before, retain_after, seed)
    if not retain:
        notes.append("no retain prompts: retain metrics and KID are not measured (the gate fails closed)")
    info = {
        "concepts": [{"name": c.name, "kind": c.kind} for c in request.concepts],
        "images_per_prompt": ev.images_per_prompt, "seed": seed, "sampling": config.sampling.model_dump(),
        "detector": detector.description, "clip_model": clip.source,
        "images_drawn": generated + sum(
            len(r.images_after) + (0 if r.images_before is None else len(r.images_before))
            for r in attack_rows),
        "generation_s": generation_s, "attack_s": attack_s, "notes": notes,
    }
    info["generation_images_per_s"] = generated / generation_s if generation_s else None
    return EvaluationResult(metrics, rows, info, attack_token)


def _token_attack(original, erased, request, config, judge, draw, progress):
    """TI on the erased model (and on the original as the control); rows for the token prompts."""
    ev, notes = config.evaluation, []
    if len(request.concepts) != 1 or not request.images:
        notes.append("recovery attack by TI not run: it needs one concept and its images "
                     f"(this request has {len(request.concepts)} concepts, {len(request.images)} images)")
        return [], None, notes
    concept = request.concept
    ti = config.erasure.textual_inversion
    erased_token = learn_attack_token(erased, concept, request.images, ti, ev.attack, config.runtime.seed, progress)
    erased_pipe, attack = token_pipeline(erased, erased_token, ev.forget_templates)
    after = generate(erased_pipe, attack.prompts, desc="attack on erased model", **draw)
    control = None
    if request.learned_token is not None:  # method A learned it on the original with these images already
        control = token_pipeline(original, request.learned_token, ev.forget_templates)
    elif ev.attack.on_original:
        control = token_pipeline(original, learn_attack_token(original, concept, request.images, ti, ev.attack,
                                                              config.runtime.seed, progress), ev.forget_templates)
    before = generate(control[0], control[1].prompts, desc="attack on original model", **draw) if control else {}
    rows = [_row("token", prompt, "concept rate", lambda im: judge.concept(im, [concept]),
                 before[control[1].prompts[k]] if control else None, after[prompt])
            for k, prompt in enumerate(attack.prompts)]
    return rows, erased_token, notes


def _metrics(rows: list[PromptResult], clip, retain_before, retain_after, seed: int) -> dict[str, float | None]:
    def of(group: str, side: str, key: str) -> float | None:
        return _mean(getattr(r, side).get(key) for r in rows if r.group == group)

    m: dict[str, float | None] = {
        "forget_detection_rate_before": of("forget", "before", "rate"),
        "forget_detection_rate": of("forget", "after", "rate"),
        "forget_clip_score_before": of("forget", "before", "clip_score"),
        "forget_clip_score": of("forget", "after", "clip_score"),
        "retain_clip_score_before": of("retain", "before", "clip_score"),
        "retain_clip_score": of("retain", "after", "clip_score"),
        "retain_accuracy_before": of("retain", "before", "rate"),
        "retain_accuracy": of("retain", "after", "rate"),
        "attack_token_rate_before": of("token", "before", "rate"),
        "attack_token_rate": of("token", "after", "rate"),
        "attack_paraphrase_rate_before": of("paraphrase", "before", "rate"),
        "attack_paraphrase_rate": of("paraphrase", "after", "rate"),
    }
    b, a = m["retain_clip_score_before"], m["retain_clip_score"]
    m["retain_clip_drop"] = (b - a) / b if b and a is not None else None
    b, a = m["retain_accuracy_before"], m["retain_accuracy"]
    m["retain_accuracy_drop"] = b - a if b is not None and a is not None else None
    attack = [m["attack_token_rate"], m["attack_paraphrase_rate"]]
    # the worst case; with no TI token attack the gate cannot know, so it stays unmeasured
    m["attack_success"] = max(v for v in attack if v is not None) if m["attack_token_rate"] is not None else None
    m["kid"] = m["kid_std"] = m["fid"] = None
    if retain_before is not None and len(retain_before) >= 2:
        # Unit CLIP features scaled to norm sqrt(d): the cubic kernel's x.y/d is then the cosine, the
        # regime KID's kernel was made for (Inception features), whatever the CLIP width. Unscaled, it is
        # ~1 + 3 cos/d: a retain set whose accuracy fell from 100% to 21% moved KID by only 0.005.
        fb, fa = (clip.image_features(images).numpy() for images in (retain_before, retain_after))
        fb, fa = fb * np.sqrt(fb.shape[1]), fa * np.sqrt(fa.shape[1])
        kid = kernel_inception_distance(fb, fa, seed=seed)
        m["kid"], m["kid_std"] = kid.mean, kid.std
        if len(fb) >= FID_MIN_SAMPLES:
            m["fid"] = frechet_distance(fb, fa)
    return m


def evaluate_result(model, result, request: ErasureRequest, config, progress: bool = False) -> EvaluationResult:
    """Evaluate an ErasureResult against the base it was made from (model: a model_loading.LoadedModel):
    CLIP and the detector load on the model's device, the erased model is a fused copy."""
    from ..model_loading import resolve_dtype
    from .clip_features import load_clip
    from .detectors import load_detector

    clip = load_clip(config.evaluation.clip_model, model.device, resolve_dtype(config.runtime.dtype))
    detector = load_detector(config.evaluation.detector, clip, model.device)
    return evaluate(model.pipeline, result.fused_copy(model.pipeline), request, config, clip, detector, progress)
