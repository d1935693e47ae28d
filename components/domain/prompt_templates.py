"""Prompt templates per concept kind, for textual inversion and for the prompts that name a concept.

Words kept plain ("a photo of a {}") so they also exist in the toy world's small vocabulary.
"""
from __future__ import annotations

TEMPLATES: dict[str, tuple[str, ...]] = {
    "object": ("a photo of a {}", "a {}", "a picture of a {}", "an image of a {}", "a drawing of a {}"),
    "style": ("a painting in the style of {}", "art in the style of {}", "a picture in the style of {}",
              "an image in the style of {}"),
    "identity": ("a photo of {}", "a picture of {}", "an image of {}", "a painting of {}"),
    "logo": ("the {} logo", "a photo of the {} logo", "an image of the {} logo", "the logo of {}"),
    "other": ("a photo of {}", "a picture of {}", "an image of {}", "{}"),
}
# The concept kinds, defined here once: a kind is what has templates. The ticket's ConceptKind and the
# run config's forget_templates keys are built from this tuple.
CONCEPT_KINDS = tuple(TEMPLATES)


def templates_for(kind: str) -> tuple[str, ...]:
    return TEMPLATES[kind]


def fill(templates, word: str) -> list[str]:
    return [t.format(word) for t in templates]
