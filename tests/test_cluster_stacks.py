"""Cluster stacks offline: `lethe stack register` in a temporary ZenML store, then what ZenML's Kubernetes and
Kubeflow orchestrators would submit for Lethe's pipelines, built with their own functions (tests/cluster_probe.py).
No cluster, no ZenML server."""
import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from conftest import REPO

K8S_VERSION = "1.35.0"  # as tests/test_k8s_manifests.py
STACKS = REPO / "configs" / "stacks"
pytestmark = pytest.mark.filterwarnings("ignore")


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def zenml_env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("lethe-home")
    return {**os.environ, "LETHE_HOME": str(home), "ZENML_CONFIG_PATH": str(home / "zenml"),
            "ZENML_ANALYTICS_OPT_IN": "false", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def registered(zenml_env) -> dict:
    """Both cluster stacks registered through the CLI, after checking the missing-secret refusal."""
    refused = run(zenml_env, "-m", "pipelines.cli", "stack", "register", str(STACKS / "kubernetes.yaml"))
    secrets = ("from zenml.client import Client; c = Client(); "
               "c.create_secret('lethe_mlflow', values={'username': 'lethe', 'password': 'pw'}); "
               "c.create_secret('lethe_s3', values={'aws_access_key_id': 'a', 'aws_secret_access_key': 'b'})")
    assert run(zenml_env, "-c", secrets).returncode == 0
    done = {name: run(zenml_env, "-m", "pipelines.cli", "stack", "register", str(STACKS / f"{name}.yaml"))
            for name in ("kubernetes", "kubeflow")}
    again = run(zenml_env, "-m", "pipelines.cli", "stack", "register", str(STACKS / "kubernetes.yaml"))
    return {"refused": refused, "again": again, **done}


def probe(zenml_env: dict, stack: str) -> dict:
    result = run(zenml_env, "tests/cluster_probe.py", str(STACKS / f"{stack}.yaml"), str(REPO / "configs" / "sd21.yaml"))
    line = [x for x in result.stdout.splitlines() if x.startswith("PROBE-JSON ")]
    assert result.returncode == 0 and line, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(line[0].removeprefix("PROBE-JSON "))


@pytest.fixture(scope="module")
def kubernetes(registered, zenml_env) -> dict:
    return probe(zenml_env, "kubernetes")


@pytest.fixture(scope="module")
def kubeflow(registered, zenml_env) -> dict:
    return probe(zenml_env, "kubeflow")


def test_stack_register_needs_the_named_secrets_then_registers_and_updates(registered, zenml_env):
    assert registered["refused"].returncode == 2
    assert "lethe_mlflow" in registered["refused"].stderr and "zenml secret create" in registered["refused"].stderr
    for name in ("kubernetes", "kubeflow"):
        assert registered[name].returncode == 0, registered[name].stderr[-2000:]
        assert f"registered stack lethe-{name}" in registered[name].stdout
    assert "updated stack lethe-kubernetes" in registered["again"].stdout
    check = ("import json; from zenml.client import Client; c = Client(); out = {}\n"
             "for s in ('lethe-kubernetes', 'lethe-kubeflow'):\n"
             "    m = c.get_stack(s).components\n"
             "    out[s] = {str(k): [x.flavor_name, x.configuration] for k, v in m.items() for x in v}\n"
             "print(json.dumps(out))")
    result = run(zenml_env, "-c", check)
    stacks = json.loads(result.stdout.strip().splitlines()[-1])
    k8s = stacks["lethe-kubernetes"]
    assert k8s["orchestrator"][0] == "kubernetes" and k8s["orchestrator"][1]["kubernetes_namespace"] == "lethe"
    assert k8s["artifact_store"][0] == "s3" and k8s["artifact_store"][1]["path"] == "s3://lethe-artifacts/zenml"
    assert k8s["experiment_tracker"][1]["tracking_uri"] == "http://mlflow.lethe.svc.cluster.local:5000"
    assert k8s["experiment_tracker"][1]["tracking_password"] == "{{lethe_mlflow.password}}"  # a reference, not the password
    assert k8s["container_registry"][1]["uri"] == "registry.example.com/lethe"
    assert {"model_registry"} <= set(k8s)
    assert stacks["lethe-kubeflow"]["orchestrator"][0] == "kubeflow"


def test_kubernetes_gives_only_the_training_step_the_gpu_node(kubernetes):
    for pipeline, training in (("takedown_pods", "train_unlearning"), ("sweep_pods", "train_pending")):
        pods = kubernetes[pipeline]
        assert len(pods) == (6 if pipeline == "takedown_pods" else 7)
        for name, pod in pods.items():
            kubernetes_validate.validate(pod, K8S_VERSION, strict=True)  # as the API server would read it
            spec, container = pod["spec"], pod["spec"]["containers"][0]
            assert spec["serviceAccountName"] == "lethe-runner"
            assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
            assert container["volumeMounts"] == [{"name": "lethe-data", "mountPath": "/var/lib/lethe"}]
            assert spec["volumes"] == [{"name": "lethe-data", "persistentVolumeClaim": {"claimName": "lethe-data"}}]
            assert {"name": "LETHE_HOME", "value": "/var/lib/lethe"} in container["env"]
            assert container["image"] == "registry.example.com/lethe/lethe-step:0.1.0"
            limits = container.get("resources", {}).get("limits", {})
            if name == training:
                assert limits["nvidia.com/gpu"] == "1"  # a string: Kubernetes rejects a number here
                assert container["resources"]["requests"] == {"cpu": "4", "memory": "32Gi"}
                assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
                assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            else:
                assert "nvidia.com/gpu" not in limits and "tolerations" not in spec and "nodeSelector" not in spec


def test_the_registry_steps_get_the_in_cluster_mlflow_and_its_credentials_from_the_zenml_secret(kubernetes):
    assert kubernetes["registry"] == {"uri": "http://mlflow.lethe.svc.cluster.local:5000", "username": "lethe",
                                      "password_set": True}


def test_the_steps_run_the_prebuilt_image_with_its_baked_in_code(kubernetes):
    docker = kubernetes["docker"]
    assert docker["parent_image"] == "registry.example.com/lethe/lethe-step:0.1.0" and docker["skip_build"] is True
    assert not docker["allow_download_from_artifact_store"] and not docker["allow_download_from_code_repository"]


def test_a_scheduled_sweep_is_a_cron_job_that_never_overlaps(kubernetes):
    cron = kubernetes["sweep_cron_job"]
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    kubernetes_validate.validate(cron | {"metadata": {"name": "lethe-sweep"}}, K8S_VERSION, strict=True)
    # The pods see the image's configs and the inbox URL, not this machine's paths.
    assert kubernetes["sweep_parameters"] == {"inbox": "s3://lethe-inbox/tickets", "config_path": "/app/configs/sd21.yaml"}


def _kfp_tasks(kubeflow: dict) -> dict:
    return kubeflow["takedown_kfp"]["root"]["dag"]["tasks"]


def test_the_kubeflow_spec_has_the_six_tasks_in_order(kubeflow):
    tasks = _kfp_tasks(kubeflow)
    assert set(tasks) == {"validate-ticket-images", "learn-concept-token", "train-unlearning", "evaluate-adapter",
                          "register-adapter", "gate"}
    chain = ["validate-ticket-images", "learn-concept-token", "train-unlearning", "evaluate-adapter", "register-adapter", "gate"]
    for before, after in zip(chain, chain[1:]):
        assert before in tasks[after]["dependentTasks"]
    executors = kubeflow["takedown_kfp"]["deploymentSpec"]["executors"]
    limited = {name for name, e in executors.items() if e["container"].get("resources")}
    assert limited == {"exec-train-unlearning"}  # only the training task asks for anything (its 4 CPUs)


@pytest.mark.xfail(strict=True, reason="ZenML 0.98 drops a Kubeflow step's node selectors (its settings validator rebuilds "
                   "pod_settings from a top-level field its compiler strips), and without the `accelerator` selector its "
                   "Kubeflow orchestrator requests no GPU. Strict: this fails loudly once ZenML fixes it.")
def test_the_kubeflow_training_task_requests_the_gpu(kubeflow):
    executors = kubeflow["takedown_kfp"]["deploymentSpec"]["executors"]
    assert executors["exec-train-unlearning"]["container"]["resources"].get("accelerator", {}).get("resourceCount") == "1"


def test_schedules_and_cluster_runs_refuse_what_pods_cannot_see(zenml_env, tmp_path):
    local = run(zenml_env, "-m", "pipelines.cli", "schedule", "--cron", "0 3 * * *", "--inbox", str(tmp_path),
                "--stack", str(STACKS / "local.yaml"))
    assert local.returncode == 2 and "local orchestrator runs no schedules" in local.stderr
    bad_cron = run(zenml_env, "-m", "pipelines.cli", "schedule", "--cron", "every night", "--inbox", "s3://b/inbox",
                   "--stack", str(STACKS / "kubernetes.yaml"))
    assert bad_cron.returncode == 2 and "five fields" in bad_cron.stderr
    laptop_inbox = run(zenml_env, "-m", "pipelines.cli", "schedule", "--cron", "0 3 * * *", "--inbox", str(tmp_path),
                       "--stack", str(STACKS / "kubernetes.yaml"))
    assert laptop_inbox.returncode == 2 and "shared volume (/var/lib/lethe)" in laptop_inbox.stderr
    laptop_ticket = run(zenml_env, "-m", "pipelines.cli", "takedown", str(REPO / "examples/tickets/erase-circle/ticket.yaml"),
                        "--stack", str(STACKS / "kubernetes.yaml"))
    assert laptop_ticket.returncode == 2 and "must lie on the shared volume (/var/lib/lethe)" in laptop_ticket.stderr
