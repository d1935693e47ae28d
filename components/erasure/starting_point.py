"""A change already served on top of the base model (the production release) that a method trains on top of.

Method A's retain term keeps the model's predictions for every retain prompt, an earlier takedown's captions
included. Trained on the base model, a second takedown learned to keep "a red circle" as the base draws it, and
merged with the first it brought circles back (BENCHMARKS.md, "Releases"). Trained on top of production, it keeps
what production draws, where the earlier concepts are already gone, and its own change stays a difference over
that: the release that adds it (production's changes plus this one) is the model it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .result import ErasureResult

BASE_LABEL = {"release": "none: the base model"}  # the lineage of a takedown trained on the base model itself


@dataclass(frozen=True)
class StartingPoint:
    change: ErasureResult  # the production release's weights over the base
    label: dict = field(default_factory=dict)  # what it is, for the takedown's lineage: release version, tickets, hash


def label_of(start: StartingPoint | None) -> dict:
    """What a takedown records as trained on: the starting point's label, or the base model."""
    return dict(start.label) if start is not None else dict(BASE_LABEL)
