"""The recovery attack: can textual inversion, run against the ERASED model with the ticket's own
images, find a token that brings the concept back? And do paraphrases that avoid its name?

An erasure that only unlinks the concept's name (the weakness that Pham et al. and the few-shot
papers' own recovery experiments point at) passes the forget metrics and fails here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..erasure.request import Concept
from ..erasure.textual_inversion import LearnedToken, learn_token, pipeline_with_token


@dataclass
class AttackToken:
    token: LearnedToken
    prompts: list[str]  # the forget templates, filled with the learned token


def attack_prompts(templates: list[str], placeholder: str) -> list[str]:
    return [t.format(concept=placeholder) for t in templates]


def restart_ti_params(ti_params, restart):
    """The TI settings of one attack restart: the erasure's, from the restart's own init word where it names one."""
    return ti_params.model_copy(update={"init_word": restart.init_word or ti_params.init_word})


def learn_attack_token(pipe, concept: Concept, images: list[Path], ti_params, attack, seed: int,
                       progress: bool = False) -> LearnedToken:
    """TI on `pipe` (any model: the erased one, or the original as a control) at the erasure's TI
    settings, under the attack's own placeholder and, if set, step count."""
    params = ti_params.model_copy(update={"placeholder": attack.placeholder,
                                          **({"steps": attack.steps} if attack.steps else {})})
    return learn_token(pipe, concept, images, params, seed=seed, progress=progress)


def token_pipeline(pipe, token: LearnedToken, templates: list[str]) -> tuple[object, AttackToken]:
    """The pipeline to draw the attack prompts with, and those prompts."""
    return pipeline_with_token(pipe, token), AttackToken(token, attack_prompts(templates, token.token))
