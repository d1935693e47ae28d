"""Where the shipped toy world lives and how it samples by default."""
from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "toyworld"
PIPELINE_DIR = ASSETS_DIR / "sd"
CLIP_DIR = ASSETS_DIR / "clip"
DETECTOR_DIR = ASSETS_DIR / "detector"
MANIFEST = ASSETS_DIR / "world.json"

# Default sampling settings: the fidelity bar is measured at these.
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 5.0
