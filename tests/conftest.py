import os
from pathlib import Path

import pytest

# Tests never touch the network or a real hub cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_TICKET = REPO / "examples" / "tickets" / "erase-circle" / "ticket.yaml"


def toy_config_file(folder: Path, name: str, **changes) -> Path:
    """configs/toy.yaml written to folder/name.yaml with its paths made absolute and `changes` applied;
    a key like `erasure__method` reaches into nested blocks."""
    import yaml

    config = yaml.safe_load((REPO / "configs" / "toy.yaml").read_text())
    for path in (("base_model", "path"), ("evaluation", "clip_model"), ("evaluation", "detector", "path")):
        block = config
        for key in path[:-1]:
            block = block[key]
        block[path[-1]] = str((REPO / "configs" / block[path[-1]]).resolve())
    for dotted, value in changes.items():
        block = config
        *parents, last = dotted.split("__")
        for key in parents:
            block = block[key]
        block[last] = value
    out = folder / f"{name}.yaml"
    out.write_text(yaml.safe_dump(config))
    return out


@pytest.fixture(scope="session")
def toy_world():
    """The shipped toy world, loaded once through the same code path as real checkpoints."""
    from components.models.loading import load_pipeline
    from components.toyworld.detector import ConceptDetector
    from components.toyworld.world import DETECTOR_DIR, PIPELINE_DIR

    return load_pipeline(PIPELINE_DIR), ConceptDetector.from_pretrained(DETECTOR_DIR)


@pytest.fixture(scope="session")
def toy_config():
    from components.config.run_config import load_run_config

    return load_run_config(REPO / "configs" / "toy.yaml")


@pytest.fixture
def fresh_toy_pipeline():
    """A factory of unshared toy pipelines, for tests that apply or fuse erasure results."""
    from components.models.loading import load_pipeline
    from components.toyworld.world import PIPELINE_DIR

    return lambda: load_pipeline(PIPELINE_DIR).pipeline


@pytest.fixture(scope="session")
def circle_images():
    return sorted(EXAMPLE_TICKET.parent.glob("*.png"))


@pytest.fixture(scope="session")
def circle_token(toy_world, toy_config, circle_images):
    """Textual inversion for "circle" from the example ticket's five images, at the toy config's settings."""
    from components.erasure.request import Concept
    from components.erasure.textual_inversion import learn_token

    model, _ = toy_world
    return learn_token(model.pipeline, Concept("circle"), circle_images, toy_config.erasure.textual_inversion, seed=0)


OTHER_SHAPES_RETAIN = [f"a {c} {s}" for s in ("square", "triangle", "cross") for c in ("red", "green", "blue", "yellow")]


@pytest.fixture(scope="session")
def erasure_results(toy_world, toy_config, circle_images, circle_token):
    """erasure_results(method, concepts) runs a method once per session at the toy config's settings."""
    from components.erasure.methods import erase
    from components.erasure.request import Concept, ErasureRequest

    model, _ = toy_world
    cache = {}

    def run(method: str, concepts: tuple[str, ...] = ("circle",)):
        if (method, concepts) not in cache:
            retain = [p for p in OTHER_SHAPES_RETAIN if p.split()[-1] not in concepts]
            request = ErasureRequest([Concept(c) for c in concepts], images=circle_images, retain_prompts=retain,
                                     seed=toy_config.runtime.seed, learned_token=circle_token)
            cache[method, concepts] = erase(model.pipeline, request, toy_config.erasure.model_copy(update={"method": method}))
        return cache[method, concepts]

    return run
