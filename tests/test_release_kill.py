"""A release change killed at any stage leaves production as it was and registers nothing half-made.

Production holds circle (method C, one release). A worker process then adds square through the release
flow and is killed with SIGKILL at one point each time: while composing, while verifying, between two
artefact uploads, just before the version is created, before the `candidate` alias, inside the promotion
lock, and between the approval tag and the `production` alias. After each kill: production is the same
version with the same weights hash, and every release version that exists is whole (record, weights and
report logged, a status tag; pending until its verdict). Last, an undisturbed change succeeds: the lock
a killed worker left behind is broken once its lease is over (a crash delays the next promotion, it does not block it), and
production holds both concepts. The evaluation is the concurrency test's tiny one: what is tested is
the flow, not the bars.
"""
import subprocess
import sys
import time

import pytest

from benchmarks.fresh_tickets import write_ticket
from components.registry.model_registry import STATUS_APPROVED, STATUS_PENDING, STATUS_REJECTED
from conftest import REPO, toy_config_file
from test_release_concurrency import TINY

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

WORKER = """
import os, signal, sys
from pathlib import Path
from mlflow.tracking import MlflowClient
import components.evaluation.evaluate as evaluate
import components.release.building as building
from components.config.run_config import load_run_config
from components.models.loading import load_pipeline
from components.registry.model_registry import AdapterRegistry
from components.registry.release_registry import ReleaseRegistry
from components.release.release_flow import change_release

uri, config_path, version, work, kill_at = sys.argv[1:6]


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def after_calls(method, n):  # die on the n-th call, after the earlier ones went through
    calls = [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            die()
        return method(*args, **kwargs)
    return wrapped


def unless_production(method):
    def wrapped(self, name, alias, version):
        if alias == "production":
            die()
        return method(self, name, alias, version)
    return wrapped


if kill_at == "composing":
    building.compose = die
elif kill_at == "verifying":
    evaluate.generate = after_calls(evaluate.generate, 2)  # the original's images drawn, the release's not
elif kill_at == "logging artefacts":
    MlflowClient.log_artifacts = after_calls(MlflowClient.log_artifacts, 2)  # the record logged, the weights not
elif kill_at == "creating the version":
    MlflowClient.create_model_version = die
elif kill_at == "aliasing the candidate":
    ReleaseRegistry.set_candidate = die
elif kill_at == "inside the lock":
    AdapterRegistry.promote = die
elif kill_at == "approved, not yet aliased":
    MlflowClient.set_registered_model_alias = unless_production(MlflowClient.set_registered_model_alias)
else:
    raise SystemExit(f"unknown kill point {kill_at}")

config = load_run_config(config_path)
registry = AdapterRegistry(uri)
takedown = building.load_takedown(registry, config.base_model.registry_name, version)
change_release(load_pipeline(config.base_model.source), config, registry, ReleaseRegistry(registry), "takedown",
               "worker", Path(work), add=[takedown])
print("NOT KILLED")
"""
KILL_POINTS = ["composing", "verifying", "logging artefacts", "creating the version", "aliasing the candidate",
               "inside the lock", "approved, not yet aliased"]
WHOLE = {"record", "release", "report"}


@pytest.fixture(scope="module")
def world(tmp_path_factory, toy_world):
    """A sqlite registry whose production release holds circle; square approved and waiting to be added."""
    from components.config.run_config import load_run_config
    from components.domain.ticket import load_ticket
    from components.erasure.methods import erase
    from components.erasure.request import ErasureRequest
    from components.evaluation.prompt_sets import with_prompt_sets
    from components.registry.model_registry import AdapterRegistry
    from components.registry.release_registry import ReleaseRegistry
    from components.release.building import load_takedown
    from components.release.release_flow import change_release

    tmp = tmp_path_factory.mktemp("kill")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    config_path = toy_config_file(tmp, "tiny", **TINY, base_model__registry_name="lethe-kill")
    config = load_run_config(config_path)
    registry = AdapterRegistry(uri, artifact_location=(tmp / "artifacts").as_uri())
    model, _ = toy_world
    versions = {}
    for shape in ("circle", "square"):
        ticket = write_ticket(tmp / shape, shape, seed=7)
        request = with_prompt_sets(ErasureRequest.from_ticket(load_ticket(ticket)), config.evaluation)
        adapter = erase(model.pipeline, request, config.erasure).save(tmp / "adapters" / shape)
        v = registry.register("lethe-kill", {"adapter": adapter, "ticket": ticket},
                              {"ticket_id": f"FRESH-{shape.upper()}", "content_sha256": shape}, {}, run_name=shape)
        registry.promote(v, [], ["approved (test)"])
        versions[shape] = v.version
    releases = ReleaseRegistry(registry)
    first = change_release(model, config, registry, releases, "takedown", "test", tmp / "first",
                           add=[load_takedown(registry, "lethe-kill", versions["circle"])])
    assert first.promoted, first.decision.reasons
    return {"tmp": tmp, "uri": uri, "config": config, "config_path": config_path, "registry": registry,
            "releases": releases, "square": versions["square"], "first": first.version}


def state(world) -> tuple[str, str, list[dict]]:
    from components.release.building import production

    version, record = production(world["releases"], "lethe-kill")
    return version, record.weights_sha256, world["releases"].versions("lethe-kill-release")


@pytest.fixture(scope="module")
def kills(world):
    """Kill a worker at every point in turn; the registry's state after each."""
    before = state(world)
    after = {}
    for k, point in enumerate(KILL_POINTS):
        run = subprocess.run([sys.executable, "-c", WORKER, world["uri"], str(world["config_path"]), world["square"],
                              str(world["tmp"] / f"worker-{k}"), point],
                             cwd=REPO, capture_output=True, text=True, timeout=900)
        after[point] = (run, state(world))
    return before, after


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_release_change_killed_leaves_production_and_registers_nothing_half_made(kills, point):
    (version, weights, _), after = kills
    run, (now_version, now_weights, versions) = after[point]
    assert run.returncode == -9, f"the worker was not killed {point}: {run.stdout[-2000:]}{run.stderr[-4000:]}"
    assert (now_version, now_weights) == (version, weights)
    for v in versions:
        assert WHOLE <= set(v["artefacts"]), v
        assert v["status"] in (STATUS_PENDING, STATUS_REJECTED, STATUS_APPROVED), v
        if v["version"] != version:
            assert "production" not in v["aliases"]


def test_what_the_kills_left_registered(kills):
    (_, _, first), after = kills
    registered = {point: len(st[2]) - len(first) for point, (_, st) in after.items()}
    # nothing before the version is created; one whole pending version at each later point
    counts = [registered[p] for p in KILL_POINTS]
    assert counts == [0, 0, 0, 0, 1, 2, 3], registered
    last = after[KILL_POINTS[-1]][1][2]
    statuses = [v["status"] for v in last[len(first):]]
    assert statuses == [STATUS_PENDING, STATUS_PENDING, STATUS_APPROVED], statuses  # approved, never served: production stayed


def test_after_the_kills_an_undisturbed_change_breaks_the_stale_lock_and_adds_the_concept(world, kills, toy_world):
    from components.release.building import load_takedown
    from components.release.release_flow import change_release

    lock = "lethe-kill-release-lock"
    assert world["registry"].client.get_registered_model(lock)  # left held by the worker killed inside it
    started = time.monotonic()
    outcome = change_release(toy_world[0], world["config"], world["registry"], world["releases"], "takedown", "test",
                             world["tmp"] / "after", add=[load_takedown(world["registry"], "lethe-kill", world["square"])])
    assert outcome.promoted, outcome.decision.reasons
    version, _, _ = state(world)
    assert version == outcome.version and outcome.candidate.record.concepts == ["circle", "square"]
    assert outcome.candidate.based_on == world["first"]
    assert time.monotonic() - started < 180  # the stale lock delayed it (lease 60 s), it did not block it
    assert not world["registry"]._exists(lock)
