"""How much an evaluation draws and trains, from its config and request alone (no model): the cost model.

The SD-scale benchmark turns these counts into U-Net passes and GPU-seconds per ticket; the counts
follow evaluate.evaluate exactly (the same prompt sets, per-prompt counts and attack restarts), so a
change to the evaluation's defaults moves the estimate with it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..erasure.request import ErasureRequest
from .image_counts import attack_images_per_prompt
from .prompt_sets import evaluation_sets
from .sequential import look_counts


@dataclass(frozen=True)
class EvaluationWorkload:
    # forget, retain, neighbour and paraphrase images, drawn by each model: a sequential evaluation's first look (the
    # cost when every check is decided there), and its most (every prompt drawn at the last look; = set_images for one)
    set_images: int
    set_images_max: int
    attack_ti_runs: int  # TI restarts on the erased model
    # 0 or 1: the control TI on the original (0 when method A's token is reused); a later restart's control, run only
    # when the first misses its bar, is not counted: the usual cost, not the worst case
    control_ti_runs: int
    attack_ti_steps: int  # per TI run
    attack_images: int  # the restarts' images on the erased model
    control_images: int  # the control's images on the original model

    def images(self, original_cached: bool) -> int:
        """Images generated: the erased model's and the attack control's always (a learned token is new each
        time), the original's set images unless its cache holds them."""
        return self.set_images + self.attack_images + self.control_images + (0 if original_cached else self.set_images)

    def ti_runs(self) -> int:
        return self.attack_ti_runs + self.control_ti_runs

    def as_dict(self) -> dict:
        return {**asdict(self), "images_cold": self.images(False), "images_warm": self.images(True)}


def evaluation_workload(request: ErasureRequest, config) -> EvaluationWorkload:
    """config: the RunConfig; request: as the evaluation gets it (with_prompt_sets; learned_token set when
    method A learned the concept's token on the original, which the control then reuses)."""
    ev = config.evaluation
    sets = evaluation_sets(request, ev)
    looks = look_counts(sets, ev)
    first, last = (sum(counts.values()) for counts in (looks[0], looks[-1]))
    attacked = len(request.concepts) == 1 and bool(request.images)
    runs = len(ev.attack.restarts) if attacked else 0
    per_run_images = len(ev.attack.templates) * attack_images_per_prompt(ev)
    control = attacked and (request.learned_token is not None or ev.attack.on_original)
    return EvaluationWorkload(
        set_images=first, set_images_max=last, attack_ti_runs=runs,
        control_ti_runs=int(attacked and request.learned_token is None and ev.attack.on_original),
        attack_ti_steps=ev.attack.steps or config.erasure.textual_inversion.steps,
        attack_images=runs * per_run_images, control_images=per_run_images if control else 0)
