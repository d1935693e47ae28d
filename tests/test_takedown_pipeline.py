"""End to end through the real ZenML local stack and MLflow (sqlite), in a temporary Lethe home.

Each takedown runs as `lethe` in a subprocess, as a user or a scheduled job would run it (and so
that a run can be killed). Small settings keep it quick: method C, 2 images per prompt, short TIs.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import EXAMPLE_TICKET, REPO, toy_config_file

pytestmark = pytest.mark.filterwarnings("ignore")


# A few prompts at 2 images each cannot show anything at 95%: the bars that need more images are lifted
# here (the pipeline and the gate's enforcement are what is tested, not method C or the default bars).
LIFTED = {"thresholds__max_attack_success": 1.0, "thresholds__min_attack_control_rate": 0.0,
          "thresholds__max_forget_detection_rate": 1.0, "thresholds__max_forget_worst_rate": None,
          "thresholds__max_retain_accuracy_drop": 1.0, "thresholds__max_retain_worst_drop": None,
          "thresholds__max_neighbour_accuracy_drop": None, "thresholds__max_neighbour_worst_drop": None}


def small_config(folder: Path, name: str, **changes) -> Path:
    """Method C, 2 images per prompt, 20-step TIs, no vocabulary (only the ticket's own and the config's
    prompts), one attack restart; a config retain prompt that names the concept, to be removed."""
    small = {"erasure__method": "closed_form", "erasure__textual_inversion__steps": 20,
             "evaluation__images_per_prompt": 2, "evaluation__min_images_per_set": None, "evaluation__sequential": None,
             "evaluation__vocabulary": None,
             "evaluation__forget_templates": {"object": ["a {concept}"]},
             "evaluation__retain_prompts": ["a green cross", "a red circle"], "evaluation__paraphrases": {},
             "evaluation__attack": {"steps": 20, "restarts": [{"seed_offset": 0}], "templates": ["a {concept}"]},
             **LIFTED}
    return toy_config_file(folder, name, **{**small, **changes})


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("lethe-home")


def lethe(home: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "LETHE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def registry(home: Path):
    from components.registry.model_registry import AdapterRegistry

    return AdapterRegistry(f"sqlite:///{home / 'mlflow.db'}")


@pytest.fixture(scope="module")
def promoted(home, tmp_path_factory):
    config = small_config(tmp_path_factory.mktemp("configs"), "pass")
    result = lethe(home, "takedown", str(EXAMPLE_TICKET), "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_demo_ticket_is_registered_with_its_lineage_and_promoted(home, promoted):
    assert "PROMOTED ticket TOY-0001" in promoted.stdout and "lethe-toyworld version 1" in promoted.stdout
    record = registry(home).version_record("lethe-toyworld", "1")
    assert record["status"] == "approved" and record["aliases"] == ["ticket-toy-0001"]  # the audit unit
    tags = record["tags"]
    for field in ("ticket_id", "concept", "kind", "requester", "legal_basis", "images", "base_model", "base_revision",
                  "base_weights_sha256", "method", "hyperparameters", "library_versions", "code_version", "run_id",
                  "decision_checks", "metric.forget_detection_rate", "metric.attack_success", "content_sha256"):
        assert tags.get(field), field
    assert tags["ticket_id"] == "TOY-0001" and tags["method"] == "closed_form"
    # what is served: the first release, holding this one takedown, verified and made production
    assert "release:  lethe-toyworld-release version 1 with TOY-0001: production" in promoted.stdout
    release = registry(home).version_record("lethe-toyworld-release", "1")
    assert release["status"] == "approved" and "production" in release["aliases"]
    assert json.loads(release["tags"]["takedowns"]) == [{"ticket": "TOY-0001", "version": "1", "method": "closed_form",
                                                         "content_sha256": tags["content_sha256"]}]
    assert release["artefacts"] == ["record", "release", "report"]
    assert sorted(json.loads(tags["images"])) == [f"circle_{i}.png" for i in range(1, 6)]
    assert record["artefacts"] == ["adapter", "config", "report", "ticket", "token", "validation"]
    assert record["metrics"]["forget_detection_rate"] <= 0.1
    # the config's retain prompt that names the concept was removed from both sets, and the audit trail says so
    assert json.loads(tags["evaluation_removed_prompts"]) == [
        {"prompt": "a red circle", "source": "config retain_prompts", "names": "circle"}]
    assert json.loads(tags["evaluation_sets"])["retain"] == 3  # a green cross + the ticket's two


def test_impossible_thresholds_give_a_rejected_version_and_no_alias(home, promoted, tmp_path):
    config = small_config(tmp_path, "impossible", thresholds__max_kid=0.0, thresholds__max_forget_detection_rate=0.0,
                          thresholds__max_retain_clip_drop=0.0)
    result = lethe(home, "takedown", str(EXAMPLE_TICKET), "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REJECTED ticket TOY-0001" in result.stdout and "aliases untouched" in result.stdout
    reg = registry(home)
    record = reg.version_record("lethe-toyworld", "2")
    assert record["status"] == "rejected" and record["aliases"] == []
    assert "kid:" in record["tags"]["decision_reasons"]
    assert reg.aliases("lethe-toyworld") == {"ticket-toy-0001": "1"}
    assert reg.aliases("lethe-toyworld-release") == {"production": "1", "candidate": "1"}  # a rejected ticket: no release


def test_audit_reads_the_lineage_back(home, promoted):
    result = lethe(home, "audit", "--ticket", "TOY-0001", "--json")
    assert result.returncode == 0, result.stderr
    audit = json.loads(result.stdout)
    first = next(r for r in audit["versions"] if r["version"] == "1")
    assert [r["version"] for r in audit["releases"]][:1] == ["1"]  # every release that held the ticket
    assert first["tags"]["legal_basis"].startswith("Demonstration") and first["status"] == "approved"
    plain = lethe(home, "audit", "--version", "1")
    assert "requester: Example Rights Holder Ltd." in plain.stdout and "base_weights_sha256:" in plain.stdout


def test_sweep_skips_a_ticket_already_registered_and_reports_a_bad_one(home, promoted, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(EXAMPLE_TICKET.parent, inbox / "again")
    shutil.copytree(EXAMPLE_TICKET.parent, inbox / "broken")
    (inbox / "broken" / "circle_3.png").write_bytes(b"")  # same ticket text, different images: not a repeat
    before = len(registry(home).find_versions("lethe-toyworld"))
    config = small_config(tmp_path, "pass")
    result = lethe(home, "sweep", str(inbox), "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr  # the broken ticket failed
    assert "skipped (version" in result.stdout and "bad input" in result.stdout  # newest version of that content
    assert "image circle_3.png: does not decode" in result.stderr
    assert len(registry(home).find_versions("lethe-toyworld")) == before  # nothing new registered


@pytest.mark.slow
def test_a_run_killed_during_training_resumes_from_cache_and_registers_once(home, promoted, tmp_path):
    config = small_config(tmp_path, "slow", erasure__method="te_ascent", erasure__te_ascent__epochs=150,
                          erasure__te_ascent__learning_rate=1e-5, thresholds__max_retain_clip_drop=1.0,
                          thresholds__max_retain_accuracy_drop=1.0, thresholds__max_kid=10.0,
                          thresholds__max_forget_detection_rate=1.0)
    from components.takedown.stages import run_key

    work = home / "runs" / "TOY-0001" / run_key(EXAMPLE_TICKET, config)[:16]
    env = {**os.environ, "LETHE_HOME": str(home)}
    first = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "takedown", str(EXAMPLE_TICKET), "--config", str(config)],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    started = work / "training_started.json"
    deadline = time.time() + 600
    while not started.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert started.exists(), "the first run never reached the training step"
    time.sleep(3)  # into the 150-epoch training step (about 20 s on 2 cores)
    assert first.poll() is None, "the first run ended before it could be killed"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    stamps = {p: p.stat().st_mtime_ns for p in (work / "validation.json",)}
    versions = len(registry(home).find_versions("lethe-toyworld"))

    second = lethe(home, "takedown", str(EXAMPLE_TICKET), "--config", str(config))
    assert second.returncode == 0, second.stdout + second.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # validation came from the cache
    steps = latest_run_steps(home)
    assert [steps[s] for s in ("admit_ticket", "validate_ticket_images", "learn_concept_token")] == ["cached"] * 3
    assert steps["train_unlearning"] == "completed" and (work / "register" / "adapter" / "lethe_erasure.json").exists()
    assert len(registry(home).find_versions("lethe-toyworld")) == versions + 1  # exactly one new version


def latest_run_steps(home: Path) -> dict:
    """Each step of the newest takedown run in this Lethe home and its status (completed, cached, failed)."""
    script = ("import json; from pipelines.local_stack import configure_environment; configure_environment()\n"
              "from zenml.client import Client\n"
              "run = Client().list_pipeline_runs(pipeline_name='takedown_pipeline', sort_by='desc:created', size=1,"
              " hydrate=True).items[0]\n"
              "print('STEPS ' + json.dumps({n: str(s.status.value) for n, s in run.steps.items()}))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "LETHE_HOME": str(home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.split("STEPS ", 1)[1])


def test_an_unreachable_mlflow_server_stops_the_run_before_training(tmp_path):
    config = small_config(tmp_path, "pass")
    env = {**os.environ, "LETHE_HOME": str(tmp_path / "home"), "LETHE_MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "takedown", str(EXAMPLE_TICKET), "--config", str(config)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MLflow at http://127.0.0.1:9: connecting failed" in result.stderr and "nothing ran" in result.stderr
    assert not (tmp_path / "home" / "runs").exists()


def test_training_that_diverges_fails_the_run_and_registers_nothing(home, promoted, tmp_path):
    # A learning rate of 1e30 really does blow the text encoder's weights up to inf/NaN.
    config = small_config(tmp_path, "diverge", erasure__method="te_ascent", erasure__te_ascent__learning_rate=1e30,
                          erasure__te_ascent__epochs=3)
    versions = len(registry(home).find_versions("lethe-toyworld"))
    result = lethe(home, "takedown", str(EXAMPLE_TICKET), "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "step train_unlearning failed: TrainingDiverged: te_ascent diverged" in result.stderr
    assert "non-finite values; nothing is saved" in result.stderr
    assert len(registry(home).find_versions("lethe-toyworld")) == versions


COUNTING_RUN = """
import json, sys
from components.models import loading as model_loading
counts = {"hashes": 0, "loads": []}
hash_weights, load = model_loading.weights_sha256, model_loading._load


def counted_hash(folder):
    counts["hashes"] += 1
    return hash_weights(folder)


def counted_load(*args, **kwargs):
    from zenml import get_step_context
    counts["loads"].append(get_step_context().step_run.name)  # outside a step this raises: the test would see it
    return load(*args, **kwargs)


model_loading.weights_sha256, model_loading._load = counted_hash, counted_load
from pipelines.run_takedown import run_takedown
outcome = run_takedown(sys.argv[1], sys.argv[2])
print("COUNTS " + json.dumps(counts))
"""


def test_a_takedown_hashes_the_base_weights_once_and_loads_the_model_at_most_once_per_step(tmp_path):
    # The local orchestrator runs every step in this one process, so the counters see every step's loads.
    config = small_config(tmp_path, "pass")
    env = {**os.environ, "LETHE_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", COUNTING_RUN, str(EXAMPLE_TICKET), str(config)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = json.loads(result.stdout.split("COUNTS ", 1)[1])
    assert counts["hashes"] == 1
    assert counts["loads"] and len(counts["loads"]) == len(set(counts["loads"]))  # at most one load per step
    assert set(counts["loads"]) <= {"learn_concept_token", "train_unlearning", "evaluate_adapter", "release"}
