import os
from pathlib import Path

import pytest

# Tests never touch the network or a real hub cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_TICKET = REPO / "examples" / "tickets" / "erase-circle" / "ticket.yaml"


@pytest.fixture(scope="session")
def toy_world():
    """The shipped toy world, loaded once through the same code path as real checkpoints."""
    from components.model_loading import load_pipeline
    from components.toyworld.detector import ConceptDetector
    from components.toyworld.world import DETECTOR_DIR, PIPELINE_DIR

    return load_pipeline(PIPELINE_DIR), ConceptDetector.from_pretrained(DETECTOR_DIR)
