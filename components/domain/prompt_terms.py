"""Does a prompt name a concept? Whole words, case-insensitive: "a red circle" names "circle" and
"red", "a circled area" and "redo" do not. Used wherever a prompt must not ask for what is erased
(retain prompts, neighbours, paraphrases) and to find the prompts that do (forget sets).
"""
from __future__ import annotations

import re
from collections.abc import Iterable


def _pattern(term: str) -> re.Pattern:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def names(prompt: str, term: str) -> bool:
    """True if `prompt` contains `term` as whole word(s); an empty term names nothing."""
    return bool(term.split()) and _pattern(term).search(prompt) is not None


def first_named(prompt: str, terms: Iterable[str]) -> str | None:
    """The first of `terms` that `prompt` names, or None."""
    return next((t for t in terms if names(prompt, t)), None)


def same_prompt(a: str, b: str) -> bool:
    """Equal up to case and runs of whitespace: the same request to the model."""
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def without(prompt: str, terms: Iterable[str]) -> str:
    """`prompt` with every whole-word occurrence of `terms` taken out: "a red circle" without "red" is
    "a circle" (the anchor a concept's prompt is steered towards)."""
    return replaced(prompt, terms, " ")


def replaced(prompt: str, terms: Iterable[str], value: str) -> str:
    """`prompt` with every whole-word occurrence of `terms` replaced by `value`: "a yellow circle" with "yellow"
    replaced by "red" is "a red circle"."""
    for term in terms:
        if term.split():
            prompt = _pattern(term).sub(value, prompt)
    return " ".join(prompt.split())
