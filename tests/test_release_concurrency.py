"""Two release changes finishing at once, in two processes, against one real `mlflow server` on loopback:
neither concept may be lost, and production must never be a release built on a stale production.

Each worker adds one approved takedown (circle, square: method C) with the release flow; both build their
candidate on the same (empty) production at about the same time, so one of them finds production moved at
its compare-and-set and rebuilds. The evaluation is cut to a few prompts and one image each (what is
tested is the promotion protocol, not the bars), and the test runs five times.
"""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from benchmarks.fresh_tickets import write_ticket
from conftest import REPO, toy_config_file

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

TINY = {"erasure__method": "closed_form", "evaluation__images_per_prompt": 1, "evaluation__min_images_per_set": None,
        "evaluation__sequential": None,
        "evaluation__vocabulary": None,
        "evaluation__forget_templates": {"object": ["a {concept}"]},
        "evaluation__retain_prompts": ["a green triangle", "a red cross"], "evaluation__paraphrases": {},
        "thresholds__max_attack_success": 1.0, "thresholds__min_attack_control_rate": 0.0,
        "thresholds__max_forget_detection_rate": 1.0, "thresholds__max_forget_worst_rate": None,
        "thresholds__max_retain_accuracy_drop": 1.0, "thresholds__max_retain_worst_drop": None,
        "thresholds__max_neighbour_accuracy_drop": None, "thresholds__max_neighbour_worst_drop": None,
        "thresholds__max_retain_clip_drop": 1.0, "thresholds__max_kid": None}

WORKER = """
import json, sys, time
from pathlib import Path
from components.config.run_config import load_run_config
from components.models.loading import load_pipeline
from components.registry.model_registry import AdapterRegistry
from components.registry.release_registry import ReleaseRegistry
from components.release.building import load_takedown
from components.release.release_flow import change_release

uri, config_path, version, work, start_at = sys.argv[1:6]
config = load_run_config(config_path)
registry = AdapterRegistry(uri)
model = load_pipeline(config.base_model.source)
takedown = load_takedown(registry, config.base_model.registry_name, version)
while time.time() < float(start_at):  # both workers build on the same production
    time.sleep(0.01)
outcome = change_release(model, config, registry, ReleaseRegistry(registry), "takedown", f"worker-{version}", Path(work),
                         add=[takedown])
print("OUTCOME " + json.dumps(outcome.as_dict()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                             "--default-artifact-root", (folder / "artifacts").as_uri(), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    from components.registry.model_registry import AdapterRegistry

    registry = AdapterRegistry(uri)
    for _ in range(60):
        try:
            registry.check_reachable()
            break
        except Exception:  # noqa: BLE001 - the server is still starting
            time.sleep(1)
    yield uri
    os.killpg(proc.pid, 9)
    proc.wait()


@pytest.fixture(scope="module")
def takedowns(server, tmp_path_factory, toy_world):
    """Per round, two approved takedowns (circle, square) of a fresh registered model."""
    from components.config.run_config import load_run_config
    from components.domain.ticket import load_ticket
    from components.erasure.methods import erase
    from components.erasure.request import ErasureRequest
    from components.evaluation.prompt_sets import with_prompt_sets
    from components.registry.model_registry import AdapterRegistry

    tmp = tmp_path_factory.mktemp("concurrency")
    model, _ = toy_world
    registry = AdapterRegistry(server)
    results = {}
    base = load_run_config(toy_config_file(tmp, "tiny", **TINY))
    for shape in ("circle", "square"):
        ticket = write_ticket(tmp / shape, shape, seed=7)
        request = with_prompt_sets(ErasureRequest.from_ticket(load_ticket(ticket)), base.evaluation)
        results[shape] = (ticket, erase(model.pipeline, request, base.erasure).save(tmp / "adapters" / shape))

    def make(round_: int):
        name = f"lethe-race-{round_}"
        config = toy_config_file(tmp, f"tiny-{round_}", **TINY, base_model__registry_name=name)
        versions = []
        for shape, (ticket, adapter) in results.items():
            v = registry.register(name, {"adapter": adapter, "ticket": ticket},
                                  {"ticket_id": f"FRESH-{shape.upper()}", "content_sha256": shape}, {},
                                  run_name=shape)
            registry.promote(v, [], ["approved (test)"])
            versions.append(v.version)
        return config, versions

    return make


@pytest.mark.parametrize("round_", range(5))
def test_two_concurrent_takedowns_both_end_up_in_production(server, takedowns, round_, tmp_path):
    from components.registry.model_registry import AdapterRegistry
    from components.registry.release_registry import ReleaseRegistry
    from components.release.building import production

    config, versions = takedowns(round_)
    start_at = str(time.time() + 25)  # after both workers have imported torch and loaded the model
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, server, str(config), v, str(tmp_path / f"w{v}"), start_at],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for v in versions]
    outs = [w.communicate(timeout=900) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, out + err
    outcomes = [json.loads(out.split("OUTCOME ", 1)[1]) for out, _ in outs]
    assert all(o["promoted"] for o in outcomes), outcomes

    releases = ReleaseRegistry(AdapterRegistry(server))
    version, record = production(releases, f"lethe-race-{round_}")
    assert sorted(record.tickets) == ["FRESH-CIRCLE", "FRESH-SQUARE"], (outcomes, record)
    # production's chain: every promoted release replaced the production it was built on
    history = {r["version"]: r for r in releases.versions(f"lethe-race-{round_}-release")}
    approved = [v for v, r in history.items() if r["status"] == "approved"]
    assert len(approved) == 2 and history[approved[1]]["tags"]["replaces"] == approved[0]
    assert history[approved[0]]["tags"]["replaces"] == "none"
