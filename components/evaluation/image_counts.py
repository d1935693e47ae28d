"""How many images each prompt is drawn with: enough in every gated set for its bars to be reachable.

A set's pooled rate is judged by the pessimistic end of its 95% interval over all the set's images, and
that end depends on how many there are: with 64 images, 2 misses already put a drop's upper end at 10.7%,
above a 10% bar; with 128, up to 6 misses (4.7%) pass it (README, Evaluation). Sets differ in size per
ticket and per release (each erased concept takes its captions out of the near neighbours), so a fixed
count per prompt leaves small sets unable to pass and large ones over-drawn. Each gated set (forget,
retain, neighbours) is drawn with at least `min_images_per_set` images in all; a prompt in several sets
takes the largest count. Image i of a prompt is the same whatever the count (generation.image_seed).
"""
from __future__ import annotations

import math

from .prompt_sets import EvaluationSets


def gated_sets(sets: EvaluationSets) -> dict[str, list[str]]:
    """The sets the gate pools rates over, by name, each prompt once."""
    return {"forget": list(sets.forget), "retain": list(dict.fromkeys(sets.retain)),
            "neighbours": list(dict.fromkeys(sets.neighbours))}


def images_per_prompt(sets: EvaluationSets, per_prompt: int, min_per_set: int | None) -> dict[str, int]:
    """prompt -> images to draw of it; per_prompt: the floor for every prompt; min_per_set: None for none."""
    counts = {p: per_prompt for p in [*sets.forget, *sets.retain, *sets.neighbours, *sets.paraphrases]}
    for group in gated_sets(sets).values():
        if min_per_set and group:
            need = max(per_prompt, math.ceil(min_per_set / len(group)))
            for p in group:
                counts[p] = max(counts[p], need)
    return counts


def images_per_set(sets: EvaluationSets, counts: dict[str, int]) -> dict[str, int]:
    """Each gated set's images in all, as `counts` draws them."""
    return {name: sum(counts[p] for p in group) for name, group in gated_sets(sets).items()}


def attack_images_per_prompt(ev) -> int:
    """ev: the Evaluation config; images per attack template, for every restart and the control."""
    return ev.attack.images_per_prompt or ev.images_per_prompt
