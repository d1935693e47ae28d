"""The one error for training that blew up (non-finite weights, embeddings or losses)."""
from __future__ import annotations


class TrainingDiverged(RuntimeError):
    """A training produced non-finite weights or losses; nothing from it is saved or registered."""
