"""Is the concept in this image? Pluggable judges for the forget, retain and attack metrics.

- `toy`: the toy world's CNN (shape and colour heads, with an "other" class for broken shapes);
- `clip_zero_shot`: for real models, CLIP picks between the concept and configured alternatives;
- `custom`: the user's own classifier, a Python file with
  `concept_present(images, concept_name, concept_kind) -> sequence of bool` and optionally
  `matches_prompt(images, prompt) -> sequence of bool` (images: uint8 array (N, H, W, 3)), and
  optionally `can_judge(concept_name, concept_kind) -> bool`: asked when a ticket arrives, so a concept
  it cannot judge is refused before any training (without it, every concept is accepted).

`cannot_judge` says, before anything trains and without loading weights, why the configured detector
could not judge a ticket's concept.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from ..erasure.request import Concept
from ..models.loading import ModelLoadError


class PresenceDetector(Protocol):
    description: str

    def concept_present(self, images: np.ndarray, concept: Concept) -> np.ndarray:
        """Per image: True where the concept is judged present."""

    def matches_prompt(self, images: np.ndarray, prompt: str, concept: Concept) -> np.ndarray | None:
        """Per image: True where it still shows what `prompt` asks for; None if this judge cannot tell."""

    def describe(self, images: np.ndarray, concept: Concept) -> list[str]:
        """Per image: what the judge sees, in a few words (what an erased prompt draws instead)."""


class ToyDetector:
    """Shapes and colours by the toy world's detector; a concept is a shape or a colour name."""

    def __init__(self, folder: Path, device: str = "cpu"):
        from ..toyworld.detector import ConceptDetector

        self.model = ConceptDetector.from_pretrained(folder).to(device)
        self.description = f"toy detector ({folder})"

    def concept_present(self, images: np.ndarray, concept: Concept) -> np.ndarray:
        detections = self.model.detect(images)
        if concept.name in self.model.shapes:
            return np.array([d.shape == concept.name for d in detections])
        if concept.name in self.model.colours:
            return np.array([d.colour == concept.name for d in detections])
        raise ValueError(f"the toy detector knows the shapes {self.model.shapes} and colours {self.model.colours}, "
                         f"not {concept.name!r}")

    def matches_prompt(self, images: np.ndarray, prompt: str, concept: Concept) -> np.ndarray | None:
        words = prompt.lower().split()
        shapes = [w for w in words if w in self.model.shapes]
        colours = [w for w in words if w in self.model.colours]
        if not shapes and not colours:
            return None
        return np.array([all(d.shape == s for s in shapes) and all(d.colour == c for c in colours)
                         for d in self.model.detect(images)])

    def describe(self, images: np.ndarray, concept: Concept) -> list[str]:
        return [f"{d.colour} {d.shape if d.shape != 'other' else 'other shape'}" for d in self.model.detect(images)]


class ClipZeroShotDetector:
    """CLIP chooses among the concept's name prompt and the alternatives; present = the concept wins."""

    def __init__(self, clip, alternatives: list[str]):
        self.clip, self.alternatives = clip, list(alternatives)
        self.description = f"zero-shot CLIP ({clip.source}) against {len(self.alternatives)} alternatives"

    def concept_present(self, images: np.ndarray, concept: Concept) -> np.ndarray:
        return self.clip.zero_shot(images, [concept.text, *self.alternatives]) == 0

    def matches_prompt(self, images: np.ndarray, prompt: str, concept: Concept) -> np.ndarray | None:
        candidates = list(dict.fromkeys([prompt, concept.text, *self.alternatives]))
        return self.clip.zero_shot(images, candidates) == 0

    def describe(self, images: np.ndarray, concept: Concept) -> list[str]:
        candidates = [concept.text, *self.alternatives]
        return [candidates[i] for i in self.clip.zero_shot(images, candidates)]


class CustomDetector:
    def __init__(self, path: Path):
        spec = importlib.util.spec_from_file_location(f"lethe_custom_detector_{abs(hash(str(path)))}", path)
        if spec is None or not path.is_file():
            raise ModelLoadError(f"{path}: custom detector file not found")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # the user's code: report any import error against their file
            raise ModelLoadError(f"{path}: the custom detector failed to import: {err!r}") from err
        if not callable(getattr(module, "concept_present", None)):
            raise ModelLoadError(f"{path}: a custom detector must define concept_present(images, concept_name, concept_kind)")
        self.module, self.description = module, f"custom detector ({path})"

    def concept_present(self, images: np.ndarray, concept: Concept) -> np.ndarray:
        return _bools(self.module.concept_present(images, concept.name, concept.kind), len(images), "concept_present")

    def matches_prompt(self, images: np.ndarray, prompt: str, concept: Concept) -> np.ndarray | None:
        fn = getattr(self.module, "matches_prompt", None)
        return None if fn is None else _bools(fn(images, prompt), len(images), "matches_prompt")

    def describe(self, images: np.ndarray, concept: Concept) -> list[str]:
        fn = getattr(self.module, "describe", None)
        if fn is not None:
            return [str(v) for v in fn(images)]
        return ["concept" if p else "not the concept" for p in self.concept_present(images, concept)]


def _bools(values, n: int, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=bool).reshape(-1)
    if len(out) != n:
        raise ValueError(f"custom detector {name} returned {len(out)} values for {n} images")
    return out


def load_detector(config, clip=None, device: str = "cpu") -> PresenceDetector:
    """config: run_config.Detector. `clip` (a ClipFeatures) is needed by the zero-shot kind."""
    if config.kind == "toy":
        return ToyDetector(config.path, device)
    if config.kind == "clip_zero_shot":
        if clip is None:
            raise ModelLoadError("detector kind 'clip_zero_shot' needs evaluation.clip_model")
        return ClipZeroShotDetector(clip, config.alternatives)
    return CustomDetector(Path(config.path))


def cannot_judge(config, concept_name: str, concept_kind: str = "object") -> str | None:
    """Why the detector of `config` (run_config.Detector) could not judge `concept_name`, or None if it
    can. Loads no weights: the toy detector's labels come from its config.json, a custom detector's
    file is imported and its optional `can_judge` asked."""
    import json

    from ..domain.prompt_terms import names

    if config.kind == "toy":
        try:
            labels = json.loads((Path(config.path) / "config.json").read_text())
            shapes = [s for s in labels["shapes"] if s != "other"]  # "other" is the detector's reject class
            colours = list(labels["colours"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            return f"the toy detector's labels could not be read from {config.path}/config.json ({err})"
        if concept_name in shapes or concept_name in colours:
            return None
        return f"the toy detector knows only the shapes {', '.join(shapes)} and the colours {', '.join(colours)}"
    if config.kind == "clip_zero_shot":
        concept = Concept(concept_name, concept_kind)
        for alternative in config.alternatives:
            if names(alternative, concept_name) or alternative.strip().lower() == concept.text.lower():
                return (f"the alternative {alternative!r} names it, so zero-shot CLIP could never tell the concept "
                        "apart from it; remove that alternative")
        return None
    try:
        detector = CustomDetector(Path(config.path))
    except ModelLoadError as err:
        return str(err)
    can_judge = getattr(detector.module, "can_judge", None)
    if can_judge is None:
        return None
    try:
        verdict = can_judge(concept_name, concept_kind)
    except Exception as err:  # the user's code: report its failure against their file
        return f"its can_judge({concept_name!r}, {concept_kind!r}) raised {err!r} ({config.path})"
    return None if verdict else f"its can_judge({concept_name!r}, {concept_kind!r}) said no ({config.path})"
