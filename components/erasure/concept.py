"""One concept to erase: its name, its kind (which picks the prompt templates) and its aliases.

Its own module (not request.py) so that textual_inversion can take a Concept while request.py refers to
textual_inversion's LearnedToken, without the two modules importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..domain.prompt_templates import CONCEPT_KINDS, templates_for


@dataclass(frozen=True)
class Concept:
    name: str
    kind: str = "object"  # one of CONCEPT_KINDS: picks the prompt templates
    aliases: tuple[str, ...] = ()  # other names people prompt it with

    @property
    def terms(self) -> list[str]:
        """The name, then the aliases: every word that asks for the concept."""
        return [self.name, *self.aliases]

    def __post_init__(self):
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if not self.name.strip():
            raise ValueError("a concept needs a non-empty name")
        if self.kind not in CONCEPT_KINDS:
            raise ValueError(f"concept kind {self.kind!r} is not one of {CONCEPT_KINDS}")

    @property
    def text(self) -> str:
        """The concept as one plain prompt (its kind's first template): what CLIP compares images against."""
        return templates_for(self.kind)[0].format(self.name)
