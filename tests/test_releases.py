"""Releases on the toy world, through the core (no ZenML): two takedowns composed into one served model,
verified together, withdrawn, rolled back, rebuilt from the registry, exported for plain diffusers.

The takedowns are the default method (A) on two shapes (circle, square), registered and approved in a real sqlite MLflow
registry as the takedown pipeline leaves them; square's ticket arrives once circle's release serves, and is trained on
top of it, as the pipeline's training step does. The release flow then does what a takedown's last stages do.
Settings: the toy config's evaluation (8 images per prompt, at least 128 per set) and bars, except that the recovery attack is one
short TI and not gated, and method A trains without its adversarial rounds (they harden it against that
attack, and take minutes): what is tested is composition, joint verification and promotion. The retain
and neighbour bars stay the defaults. The independent check after export holds the served model to the
issue's numbers (each erased shape <= 5% on every caption, the others within 10 points of the base).
"""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks.fresh_tickets import write_ticket
from conftest import REPO, toy_config_file

# About 25 min on 2 cores (two A trainings, five verifications): `make test-heavy`, not CI.
pytestmark = [pytest.mark.slow, pytest.mark.heavy, pytest.mark.filterwarnings("ignore")]

SMALL = {"erasure__lora_ti__adversary__tokens": 0,  # the adversary hardens A against the attack, not gated here
         "evaluation__attack": {"steps": 20, "restarts": [{"seed_offset": 0}], "templates": ["a {concept}"]},
         "thresholds__max_attack_success": 1.0, "thresholds__min_attack_control_rate": 0.0}
SHAPES = ("circle", "square", "triangle", "cross")


def take_down(world, toy_world, shape: str, seed: int):
    """Method A on a fresh ticket, trained on top of the production release as the takedown pipeline does, then
    registered and approved as its gate leaves it."""
    from components.domain.ticket import content_sha256, load_ticket
    from components.erasure.methods import erase
    from components.erasure.request import ErasureRequest
    from components.evaluation.prompt_sets import with_prompt_sets
    from components.release.training_start import production_start

    tmp, config, registry = world["tmp"], world["config"], world["registry"]
    model, _ = toy_world
    ticket_path = write_ticket(tmp / "tickets" / shape, shape, seed=seed)
    loaded = load_ticket(ticket_path)
    request = with_prompt_sets(ErasureRequest.from_ticket(loaded, seed=config.runtime.seed), config.evaluation)
    start = production_start(registry, config.base_model.registry_name, base_model(toy_world).weights_sha256)
    result = erase(model.pipeline, request, config.erasure, start=start)
    saved = result.save(tmp / "adapters" / shape)
    version = registry.register(config.base_model.registry_name, {"adapter": saved, "ticket": ticket_path},
                                {"ticket_id": loaded.ticket.ticket_id, "content_sha256": content_sha256(loaded),
                                 "concept": shape, "method": result.method}, {}, run_name=loaded.ticket.ticket_id)
    registry.promote(version, [], ["approved by the takedown's own gate (test)"])
    world["takedowns"][shape] = (version, request)
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory, toy_world):
    """Config and registry, and the first takedown (circle) approved: the release flow adds it."""
    from components.config.run_config import load_run_config
    from components.registry.model_registry import AdapterRegistry
    from components.registry.release_registry import ReleaseRegistry

    tmp = tmp_path_factory.mktemp("releases")
    config = load_run_config(toy_config_file(tmp, "release", **SMALL))
    registry = AdapterRegistry(f"sqlite:///{tmp / 'mlflow.db'}", artifact_location=(tmp / "artifacts").as_uri())
    world = {"tmp": tmp, "config": config, "registry": registry, "releases": ReleaseRegistry(registry), "takedowns": {}}
    take_down(world, toy_world, "circle", seed=100)
    return world


def base_model(toy_world):
    from components.models.loading import LoadedModel

    model, _ = toy_world
    assert isinstance(model, LoadedModel)
    return model


def add(world, toy_world, shape, work):
    from components.release.building import load_takedown
    from components.release.release_flow import change_release

    version, request = world["takedowns"][shape]
    registry, config = world["registry"], world["config"]
    takedown = load_takedown(registry, config.base_model.registry_name, version.version)
    return change_release(base_model(toy_world), config, registry, world["releases"], "takedown", "test", work,
                          add=[takedown], new_requests={takedown.entry.ticket_id: request})


@pytest.fixture(scope="module")
def two_releases(world, toy_world):
    """Circle's release, then square taken down on top of it (the second ticket arrives after the first is served)."""
    first = add(world, toy_world, "circle", world["tmp"] / "r1")
    square = take_down(world, toy_world, "square", seed=101)
    assert square.hyperparameters["trained_on"]["release"] == first.version
    second = add(world, toy_world, "square", world["tmp"] / "r2")
    return first, second


def production(world):
    from components.release.building import production as read_production

    return read_production(world["releases"], world["config"].base_model.registry_name)


def test_two_takedowns_make_one_production_release_that_holds_both(world, two_releases):
    first, second = two_releases
    assert first.promoted and second.promoted, (first.decision.reasons, second.decision.reasons)
    version, record = production(world)
    assert version == second.version and record.concepts == ["circle", "square"]
    assert record.replaces == first.version and record.reason == "takedown"
    tags = world["releases"].registry.version_record("lethe-toyworld-release", version)["tags"]
    assert json.loads(tags["added"]) == ["FRESH-SQUARE"] and json.loads(tags["tickets"]) == ["FRESH-CIRCLE", "FRESH-SQUARE"]
    summary = json.loads((second.report_dir / "release.json").read_text())
    assert set(summary["per_concept"]) == {"circle", "square"}
    assert (second.report_dir / "report.html").is_file()


def test_a_one_takedown_release_is_exactly_its_adapter(world, toy_world, two_releases, fresh_toy_pipeline):
    from components.erasure.result_kinds import load_result
    from components.erasure.tensors import named_tensors

    first, _ = two_releases
    pipe, adapter_pipe = fresh_toy_pipeline(), fresh_toy_pipeline()
    first.candidate.release.fuse(pipe)
    load_result(world["tmp"] / "adapters" / "circle").fuse(adapter_pipe)
    theirs = named_tensors(adapter_pipe)
    assert all(torch.equal(t, theirs[n]) for n, t in named_tensors(pipe).items())


def test_rebuilding_from_the_registry_reproduces_the_weights_hash(world, toy_world, two_releases):
    from components.release.building import rebuild_weights_sha256

    _, record = production(world)
    assert rebuild_weights_sha256(base_model(toy_world).pipeline, world["registry"], record) == record.weights_sha256


def test_a_candidate_that_brings_an_earlier_concept_back_is_rejected_and_production_stays(world, toy_world,
                                                                                        two_releases):
    """A 'takedown' of triangle whose change cancels circle's: the candidate must fail on circle, by name."""
    from components.erasure.result_kinds import load_result
    from components.erasure.tensors import get_tensor
    from components.erasure.weight_delta import WeightDelta
    from components.release.building import Takedown
    from components.release.record import ReleaseEntry
    from components.release.release_flow import change_release
    from components.erasure.request import ErasureRequest, Concept

    pipe = base_model(toy_world).pipeline
    circle = load_result(world["tmp"] / "adapters" / "circle")
    undo = {n: 2 * get_tensor(pipe, n).detach() - v for n, v in circle.fused_tensors(pipe).items()}
    harmful = WeightDelta.from_changes(pipe, undo, method="te_ascent", concepts=["triangle"], hyperparameters={},
                                       wall_time_s=0.0)
    entry = ReleaseEntry("BAD-TRIANGLE", "triangle", "object", "999", "0" * 64, "te_ascent")
    request = ErasureRequest([Concept("triangle")], seed=0)
    before = production(world)[0]
    outcome = change_release(base_model(toy_world), world["config"], world["registry"], world["releases"], "takedown",
                             "test", world["tmp"] / "bad", add=[Takedown(entry, harmful, request)])
    assert not outcome.promoted and production(world)[0] == before
    assert any("concept 'circle'" in r for r in outcome.decision.reasons), outcome.decision.reasons
    assert not any("concept 'square'" in r for r in outcome.decision.reasons), outcome.decision.reasons
    record = world["releases"].registry.version_record("lethe-toyworld-release", outcome.version)
    assert record["status"] == "rejected" and "production" not in record["aliases"]


def shape_rate(pipe, shape: str, config) -> float:
    """The toy detector's rate of `shape` over all its captions (the vocabulary's ten), 8 images each (seed 4242)."""
    from components.erasure.request import Concept
    from components.evaluation.detectors import ToyDetector
    from components.evaluation.generation import generate
    from components.toyworld.world import DETECTOR_DIR

    captions = [f"{form}{c}{shape}" for form in ("a ", "a photo of a ") for c in ("red ", "green ", "blue ", "yellow ", "")]
    drawn = generate(pipe, captions, 8, config.sampling, seed=4242)
    detector = ToyDetector(DETECTOR_DIR)
    return float(np.mean(np.concatenate([detector.concept_present(drawn[c], Concept(shape)) for c in captions])))


def test_withdraw_then_rollback(world, toy_world, two_releases):
    from components.release.release_flow import change_release, rollback

    registry_name = world["config"].base_model.registry_name
    before, before_record = production(world)
    outcome = change_release(base_model(toy_world), world["config"], world["registry"], world["releases"], "withdrawal",
                             "test", world["tmp"] / "withdraw", withdraw=["FRESH-CIRCLE"], note="appeal upheld")
    assert outcome.promoted, outcome.decision.reasons
    version, record = production(world)
    assert record.concepts == ["square"] and record.reason == "withdrawal" and record.note == "appeal upheld"
    assert any("not gated" in c.reason for c in outcome.decision.checks)  # no new concept: no attack
    # drawn with seeds of its own: the withdrawn concept is back (>= 90% of the base), the other still gone (<= 5% over
    # all its captions; square was trained on top of circle's release, and alone it is not quite as gone: BENCHMARKS.md)
    served = outcome.candidate.release.fused_copy(base_model(toy_world).pipeline)
    circle_base, circle_served = (shape_rate(pipe, "circle", world["config"])
                                  for pipe in (base_model(toy_world).pipeline, served))
    assert circle_served >= 0.9 * circle_base, (circle_base, circle_served)
    assert shape_rate(served, "square", world["config"]) <= 0.05
    assert rollback(world["releases"], registry_name, "test", "legal review") == (version, before)
    again, again_record = production(world)
    assert again == before and again_record.weights_sha256 == before_record.weights_sha256
    events = [json.loads(v) for k, v in world["releases"].registry.version_record(
        "lethe-toyworld-release", before)["tags"].items() if k.startswith("event.")]
    assert events and events[-1]["event"] == "rollback" and events[-1]["why"] == "legal review"


EXPORT_DRAW = """
import sys, numpy as np, torch
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1], local_files_only=True)
pipe.set_progress_bar_config(disable=True)
captions = [f"a {c} {s}" for s in ("circle", "square", "triangle", "cross") for c in ("red", "green", "blue", "yellow")]
out = {}
for caption in captions:
    g = torch.Generator().manual_seed(90210)
    out[caption] = pipe([caption] * 8, num_inference_steps=int(sys.argv[3]), guidance_scale=float(sys.argv[4]),
                        generator=g, output_type="np").images
np.savez(sys.argv[2], **out)
assert not any(m.startswith(("components", "steps", "pipelines")) for m in sys.modules)
"""


def test_the_exported_production_release_loads_in_plain_diffusers_and_draws_neither_concept(world, toy_world,
                                                                                             two_releases, tmp_path):
    from components.release.export import export_release

    registry_name = world["config"].base_model.registry_name
    model = base_model(toy_world)
    folder = export_release(model, world["registry"], world["releases"], registry_name, tmp_path / "served")
    manifest = json.loads((folder / "lethe_release_manifest.json").read_text())
    assert manifest["concepts"] == ["circle", "square"]
    assert not list(folder.rglob("*.bin")) and list(folder.rglob("*.safetensors"))
    # method A changes only the text encoder: the release is also one LoRA file (tests/test_release_lora_file.py)
    lora = manifest["lora"]
    assert lora["max_abs_error"] < 1e-5 and all((folder / "lora" / f).is_file() for f in lora["files"])

    sampling = world["config"].sampling
    drawn = {}
    for name, source in (("base", REPO / "assets" / "toyworld" / "sd"), ("served", folder)):
        out = tmp_path / f"{name}.npz"
        subprocess.run([sys.executable, "-c", EXPORT_DRAW, str(source), str(out), str(sampling.steps),
                        str(sampling.guidance_scale)], check=True, cwd=tmp_path, timeout=900)
        drawn[name] = dict(np.load(out))
    from components.erasure.request import Concept
    from components.evaluation.detectors import ToyDetector
    from components.toyworld.world import DETECTOR_DIR

    detector = ToyDetector(DETECTOR_DIR)

    def rate(images, shape):
        return float(np.mean(detector.concept_present(images, Concept(shape))))

    for shape in SHAPES:
        captions = [c for c in drawn["base"] if c.endswith(shape)]
        base = np.mean([rate(drawn["base"][c], shape) for c in captions])
        served = [rate(drawn["served"][c], shape) for c in captions]
        if shape in ("circle", "square"):
            assert max(served) <= 0.05, (shape, served)
        else:
            assert base - np.mean(served) <= 0.10, (shape, base, served)
