"""k8s/: every rendered manifest is a valid Kubernetes object, the security and RBAC properties hold,
and the overlays change what they claim. Offline: the kustomize subset in tests/kustomize_subset.py
stands in for `kubectl kustomize`, and raises on anything it does not implement."""
from __future__ import annotations

import re
import textwrap

import kubernetes_validate
import pytest
import typer

from tests.conftest import REPO
from tests.kustomize_subset import UnsupportedKustomization, render

K8S = REPO / "k8s"
KUBERNETES_VERSION = "1.35"  # strict schemas of a current release, as shipped in kubernetes-validate
KUSTOMIZATIONS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev",
                  "production": K8S / "overlays" / "production", "kubeflow": K8S / "overlays" / "kubeflow"}
# Custom resources kubernetes-validate has no schema for; test_kubeflow_pod_default checks this one.
CUSTOM_RESOURCE_KINDS = {("kubeflow.org/v1alpha1", "PodDefault")}
NAMESPACE = "lethe"
STEP_IMAGE = "registry.example.com/lethe/lethe-step"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "CronJob", "Job"}

# The Role's rules, as documented in k8s/base/rbac.yaml: what ZenML 0.98's orchestrator pod calls.
RUNNER_RULES = {
    ("", "pods"): {"get", "list"},
    ("batch", "jobs"): {"create", "get", "list", "patch", "delete"},
    ("batch", "jobs/finalizers"): {"update"},
    ("", "secrets"): {"delete"},
}
MLFLOW_SERVICE_HOSTS = ["mlflow", "mlflow.lethe", "mlflow.lethe.svc", "mlflow.lethe.svc.cluster.local"]
# Environment variables that carry a credential: never a literal value outside the dev overlay.
CREDENTIAL_ENV = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|USERNAME|STORE_URI|ROOT_USER")
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(folder) for name, folder in KUSTOMIZATIONS.items()}


def _one(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _pod_spec(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def _workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def _container(workload: dict, name: str) -> dict:
    [found] = [c for c in _pod_spec(workload)["containers"] if c["name"] == name]
    return found


def _env(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _secret_ref(env_entry: dict) -> tuple[str, str]:
    ref = env_entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


# --- every manifest ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_rendered_object_passes_strict_schema_validation(rendered, name):
    assert rendered[name]
    for obj in rendered[name]:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_RESOURCE_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_a_misspelt_field(rendered):
    """The check above can fail: a field the schema does not know is an error in strict mode."""
    deployment = _one(rendered["base"], "Deployment", "mlflow")
    _container(deployment, "mlflow")["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_everything_lives_in_the_lethe_namespace(rendered, name):
    for obj in rendered[name]:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "lethe"


# --- RBAC ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rbac_is_namespaced_and_has_no_wildcards(rendered, name):
    kinds = {o["kind"] for o in rendered[name]}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    for role in (o for o in rendered[name] if o["kind"] == "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)


def test_runner_role_is_exactly_the_documented_least_privilege_set(rendered):
    role = _one(rendered["base"], "Role", "lethe-runner")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames tricks, no extras
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == RUNNER_RULES


def test_runner_role_is_bound_to_the_runner_service_account(rendered):
    objects = rendered["base"]
    _one(objects, "ServiceAccount", "lethe-runner")
    binding = _one(objects, "RoleBinding", "lethe-runner")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lethe-runner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "lethe-runner", "namespace": NAMESPACE}]


# --- pod security --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_pod_runs_non_root_with_a_locked_down_container(rendered, name):
    workloads = _workloads(rendered[name])
    assert workloads
    for workload in workloads:
        label = f"{name}: {workload['kind']} {workload['metadata']['name']}"
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, label
        assert pod["securityContext"]["runAsUser"] > 0, label
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, label
        # None of these pods talks to the Kubernetes API (ZenML's own pods are not in k8s/).
        assert pod["automountServiceAccountToken"] is False, label
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, label
            assert security["capabilities"]["drop"] == ["ALL"], label
            assert not security["capabilities"].get("add"), label
            assert security["readOnlyRootFilesystem"] is True, label
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), label
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), label


def test_lethe_pods_run_as_the_image_user_with_writable_tmp_and_home(rendered):
    for workload in _workloads(rendered["dev"]):
        pod = _pod_spec(workload)
        if not pod["containers"][0]["image"].startswith(STEP_IMAGE):
            continue
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (10001, 10001)
        mounts = {m["mountPath"] for m in pod["containers"][0].get("volumeMounts", [])}
        if workload["kind"] != "Job":  # the bucket job writes nothing
            assert {"/tmp", "/home/lethe"} <= mounts, workload["metadata"]["name"]


# --- MLflow --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_mlflow_takes_its_database_and_object_store_credentials_from_secrets(rendered, name):
    mlflow = _container(_one(rendered[name], "Deployment", "mlflow"), "mlflow")
    env = _env(mlflow)
    assert _secret_ref(env["MLFLOW_BACKEND_STORE_URI"]) == ("mlflow-db", "uri")
    assert _secret_ref(env["AWS_ACCESS_KEY_ID"]) == ("mlflow-s3", "AWS_ACCESS_KEY_ID")
    assert _secret_ref(env["AWS_SECRET_ACCESS_KEY"]) == ("mlflow-s3", "AWS_SECRET_ACCESS_KEY")
    auth_volume = next(v for v in _pod_spec(_one(rendered[name], "Deployment", "mlflow"))["volumes"]
                       if v["name"] == "auth-config")
    assert auth_volume["secret"]["secretName"] == "mlflow-auth"
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"].startswith("/etc/mlflow-auth/")
    assert not any(arg.startswith("--backend-store-uri") for arg in mlflow["args"])


def test_mlflow_args_are_a_valid_mlflow_server_command_with_allowed_hosts(rendered):
    from mlflow.cli import server

    mlflow = _container(_one(rendered["base"], "Deployment", "mlflow"), "mlflow")
    assert mlflow["command"] == ["mlflow"] and mlflow["args"][0] == "server"
    params = server.make_context("server", list(mlflow["args"][1:])).params  # raises on an unknown flag
    assert (params["host"], params["port"], params["app_name"]) == ("0.0.0.0", 5000, "basic-auth")
    assert params["serve_artifacts"] is True and params["artifacts_destination"].startswith("s3://")
    allowed = params["allowed_hosts"].split(",")
    for host in MLFLOW_SERVICE_HOSTS:
        assert host in allowed and f"{host}:5000" in allowed
    assert "*" not in allowed
    # mlflow only honours --allowed-hosts under its default uvicorn server.
    assert params["gunicorn_opts"] is None and params["waitress_opts"] is None


def test_mlflow_service_and_probes_use_port_5000_and_health(rendered):
    service = _one(rendered["base"], "Service", "mlflow")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(5000, "http")]
    deployment = _one(rendered["base"], "Deployment", "mlflow")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    mlflow = _container(deployment, "mlflow")
    assert mlflow["ports"] == [{"name": "http", "containerPort": 5000}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert mlflow[probe]["httpGet"] == {"path": "/health", "port": "http"}
    # A Service named mlflow would inject MLFLOW_PORT=tcp://..., which `mlflow server` reads as --port.
    assert _pod_spec(deployment)["enableServiceLinks"] is False


@pytest.mark.parametrize("name", ["base", "production", "kubeflow"])
def test_no_literal_credentials_outside_the_dev_overlay(rendered, name):
    objects = rendered[name]
    assert not [o for o in objects if o["kind"] == "Secret"]
    for workload in _workloads(objects):
        for container in _pod_spec(workload)["containers"]:
            for env_name, entry in _env(container).items():
                if CREDENTIAL_ENV.search(env_name):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (workload["metadata"]["name"], env_name)
    for path in (K8S / "base").glob("*.yaml"):
        assert not URL_WITH_PASSWORD.search(path.read_text()), path


def test_the_network_policy_admits_only_namespace_pods_to_mlflow(rendered):
    policy = _one(rendered["base"], "NetworkPolicy", "mlflow-ingress")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mlflow"}
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {}}]  # no namespaceSelector: this namespace only
    assert rule["ports"] == [{"port": 5000, "protocol": "TCP"}]


# --- the sweep CronJob ---------------------------------------------------------------------------

def test_sweep_cronjob_runs_one_sweep_at_a_time_on_a_gpu_node(rendered):
    cronjob = _one(rendered["base"], "CronJob", "lethe-sweep")
    spec = cronjob["spec"]
    assert spec["schedule"] == "0 3 * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["jobTemplate"]["spec"]["backoffLimit"] <= 2
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 24 * 3600
    pod = _pod_spec(cronjob)
    assert pod["serviceAccountName"] == "lethe-runner"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    sweep = _container(cronjob, "sweep")
    assert sweep["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert sweep["image"] == f"{STEP_IMAGE}:0.1.0"
    env = _env(sweep)
    assert env["LETHE_HOME"]["value"] == "/var/lib/lethe"
    assert env["LETHE_MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.lethe.svc.cluster.local:5000"
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    assert _secret_ref(env["MLFLOW_TRACKING_USERNAME"]) == ("lethe-mlflow-client", "username")
    assert _secret_ref(env["MLFLOW_TRACKING_PASSWORD"]) == ("lethe-mlflow-client", "password")
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    data_mount = next(m for m in sweep["volumeMounts"] if m["mountPath"] == "/var/lib/lethe")
    assert claims[data_mount["name"]] == "lethe-data"


def test_sweep_command_is_one_the_lethe_cli_accepts(rendered):
    from pipelines.cli import app

    command = _container(_one(rendered["base"], "CronJob", "lethe-sweep"), "sweep")["command"]
    assert command[:2] == ["lethe", "sweep"]
    group = typer.main.get_command(app)
    context = group.make_context("lethe", list(command[1:]))
    name, subcommand, rest = group.resolve_command(context, list(command[1:]))
    params = subcommand.make_context(name, rest, parent=context).params
    assert str(params["inbox"]) == "/var/lib/lethe/inbox"
    # /app is the project in the image, so the config must exist in the repository.
    config = params["config"]
    assert str(config).startswith("/app/") and (REPO / config.relative_to("/app")).is_file()
    with pytest.raises(Exception, match="no-such-option"):  # the check can fail
        subcommand.make_context(name, ["/inbox", "--no-such-option"], parent=context)


def test_shared_volume_and_gpu_quota(rendered):
    claim = _one(rendered["base"], "PersistentVolumeClaim", "lethe-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and "storageClassName" not in claim["spec"]
    quota = _one(rendered["base"], "ResourceQuota", "lethe-gpus")
    assert int(quota["spec"]["hard"]["requests.nvidia.com/gpu"]) >= 1


# --- the overlays change what they claim ---------------------------------------------------------

def _images(objects: list[dict]) -> set[str]:
    return {c["image"] for w in _workloads(objects) for c in _pod_spec(w)["containers"]}


def test_dev_overlay_adds_postgres_minio_and_marked_placeholder_secrets(rendered):
    base_ids = {(o["kind"], o["metadata"]["name"]) for o in rendered["base"]}
    dev = rendered["dev"]
    added = {(o["kind"], o["metadata"]["name"]) for o in dev} - base_ids
    assert {("StatefulSet", "postgres"), ("Service", "postgres"), ("Deployment", "minio"), ("Service", "minio"),
            ("PersistentVolumeClaim", "minio-data")} <= added
    secrets = {o["metadata"]["name"]: o for o in dev if o["kind"] == "Secret"}
    assert {"mlflow-db", "mlflow-s3", "mlflow-auth", "lethe-mlflow-client"} <= set(secrets)
    for secret in secrets.values():
        assert secret["metadata"]["annotations"]["lethe.example.com/dev-only"] == "replace"
    assert "dev only" in (K8S / "overlays" / "dev" / "secrets.yaml").read_text().splitlines()[0].lower()
    # The database URI MLflow gets points at the in-cluster PostgreSQL Service.
    assert "@postgres.lethe.svc.cluster.local:5432/" in secrets["mlflow-db"]["stringData"]["uri"]
    mlflow_env = _env(_container(_one(dev, "Deployment", "mlflow"), "mlflow"))
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio.lethe.svc.cluster.local:9000"
    assert {i for i in _images(dev) if i.startswith(STEP_IMAGE)} == {f"{STEP_IMAGE}:dev"}
    assert _one(dev, "PersistentVolumeClaim", "lethe-data")["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert _one(dev, "CronJob", "lethe-sweep")["spec"]["suspend"] is True


def test_production_overlay_pins_the_image_and_scales_mlflow_without_in_cluster_stores(rendered):
    production, base = rendered["production"], rendered["base"]
    assert _images(production) == {f"{STEP_IMAGE}:0.1.0"}
    assert not {o["metadata"]["name"] for o in production} & {"postgres", "minio", "minio-data"}
    mlflow = _one(production, "Deployment", "mlflow")
    assert mlflow["spec"]["replicas"] > _one(base, "Deployment", "mlflow")["spec"]["replicas"]
    assert _one(production, "PodDisruptionBudget", "mlflow")["spec"]["minAvailable"] == 1
    assert "MLFLOW_S3_ENDPOINT_URL" not in _env(_container(mlflow, "mlflow"))  # AWS S3's own endpoint
    assert _one(production, "PersistentVolumeClaim", "lethe-data")["spec"]["storageClassName"]
    node_selector = _pod_spec(_one(production, "CronJob", "lethe-sweep"))["nodeSelector"]
    assert node_selector["lethe.example.com/node-pool"] == "gpu" and node_selector["nvidia.com/gpu.present"] == "true"


def test_kubeflow_overlay_is_production_plus_a_pod_default_for_the_shared_volume(rendered):
    production_ids = [(o["kind"], o["metadata"]["name"]) for o in rendered["production"]]
    kubeflow = rendered["kubeflow"]
    assert [(o["kind"], o["metadata"]["name"]) for o in kubeflow] == production_ids + [("PodDefault", "lethe-data")]
    spec = _one(kubeflow, "PodDefault", "lethe-data")["spec"]
    assert set(spec) == {"desc", "selector", "env", "volumes", "volumeMounts"}
    assert spec["selector"] == {"matchLabels": {"pipelines.kubeflow.org/v2_component": "true"}}
    assert spec["env"] == [{"name": "LETHE_HOME", "value": "/var/lib/lethe"}]
    assert spec["volumes"] == [{"name": "lethe-data", "persistentVolumeClaim": {"claimName": "lethe-data"}}]
    assert spec["volumeMounts"] == [{"name": "lethe-data", "mountPath": "/var/lib/lethe"}]


def test_overlays_leave_the_base_security_settings_alone(rendered):
    for name in ("dev", "production", "kubeflow"):
        for kind, workload_name in (("Deployment", "mlflow"), ("CronJob", "lethe-sweep")):
            base_pod = _pod_spec(_one(rendered["base"], kind, workload_name))
            pod = _pod_spec(_one(rendered[name], kind, workload_name))
            assert pod["securityContext"] == base_pod["securityContext"]
            assert [c["securityContext"] for c in pod["containers"]] == \
                [c["securityContext"] for c in base_pod["containers"]]


# --- the renderer --------------------------------------------------------------------------------

def _write(folder, files: dict[str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


HEADER = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
TINY_DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: elsewhere
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          initContainers: [{name: init, image: "registry:5000/team/app:1.0"}]
          containers:
            - {name: app, image: "registry:5000/team/app:1.0", env: [{name: A, value: "1"}]}
            - {name: other, image: busybox}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: demo}
    """


@pytest.fixture
def tiny_base(tmp_path):
    return _write(tmp_path / "base", {
        "kustomization.yaml": HEADER + "resources: [app.yaml]\nnamespace: demo\n",
        "app.yaml": TINY_DEPLOYMENT,
    })


def test_renderer_resources_namespace_labels_images_and_patches(tmp_path, tiny_base):
    overlay = _write(tmp_path / "overlay", {
        "kustomization.yaml": HEADER + textwrap.dedent("""\
            resources: [../base, extra.yaml]
            labels:
              - pairs: {team: ml}
                includeSelectors: false
            images:
              - {name: "registry:5000/team/app", newName: other.io/app, newTag: "2.0"}
            patches:
              - target: {kind: Deployment, name: web}
                patch: |-
                  - {op: add, path: /spec/replicas, value: 3}
                  - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: B, value: "2"}}
                  - {op: replace, path: /spec/template/spec/containers/0/env/0/value, value: "one"}
                  - {op: remove, path: /spec/template/spec/containers/1}
                  - {op: add, path: /metadata/annotations, value: {}}
                  - {op: add, path: /metadata/annotations/example.com~1key, value: v}
              - target: {kind: ConfigMap, name: settings}
                path: settings-patch.yaml
            """),
        "extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n",
        "settings-patch.yaml": "- {op: replace, path: /data/a, value: '2'}\n",
    })
    objects = render(overlay)
    deployment, namespace, config_map = objects
    assert deployment["metadata"]["namespace"] == "demo"  # the base's namespace; the overlay sets none
    assert "namespace" not in namespace["metadata"] and "namespace" not in config_map["metadata"]
    assert deployment["metadata"]["labels"] == {"team": "ml"} and namespace["metadata"]["labels"] == {"team": "ml"}
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}  # includeSelectors: false
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == "other.io/app:2.0"
    assert [c["name"] for c in pod["containers"]] == ["app"]
    assert pod["containers"][0]["image"] == "other.io/app:2.0"
    assert pod["containers"][0]["env"] == [{"name": "A", "value": "one"}, {"name": "B", "value": "2"}]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["annotations"] == {"example.com/key": "v"}
    assert config_map["data"] == {"a": "2"}
    # The base on disk is unchanged by the overlay's rendering.
    assert render(tiny_base)[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry:5000/team/app:1.0"


def test_renderer_keeps_a_tag_when_only_the_name_changes_and_ignores_other_images(tmp_path, tiny_base):
    overlay = _write(tmp_path / "overlay", {"kustomization.yaml": HEADER + textwrap.dedent("""\
        resources: [../base]
        images:
          - {name: "registry:5000/team/app", newName: mirror.io/app}
          - {name: registry, newTag: "9"}
        """)})
    pod = render(overlay)[0]["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == ["mirror.io/app:1.0", "busybox"]


@pytest.mark.parametrize("kustomization, error", [
    ("resources: [app.yaml]\ncommonLabels: {team: ml}\n", UnsupportedKustomization),
    ("resources: [app.yaml]\nsecretGenerator: [{name: s, literals: [a=b]}]\n", UnsupportedKustomization),
    ("resources: [app.yaml]\nlabels: [{pairs: {team: ml}, includeSelectors: true}]\n", UnsupportedKustomization),
    ("resources: [app.yaml]\nimages: [{name: busybox, digest: 'sha256:00'}]\n", UnsupportedKustomization),
    ("resources: [app.yaml]\npatches: [{target: {kind: Deployment, name: web}, patch: 'spec: {replicas: 2}'}]\n",
     UnsupportedKustomization),  # strategic merge
    ("resources: [app.yaml]\npatches: [{target: {kind: Deployment, name: web},"
     " patch: '[{op: move, from: /spec, path: /x}]'}]\n", UnsupportedKustomization),
    ("resources: [app.yaml]\npatches: [{target: {kind: Deployment, name: nope},"
     " patch: '[{op: add, path: /x, value: 1}]'}]\n", ValueError),
    ("resources: [app.yaml]\npatches: [{target: {kind: Deployment, name: web},"
     " patch: '[{op: replace, path: /spec/replicas, value: 1}]'}]\n", KeyError),  # replace needs a member
    ("resources: [app.yaml, app.yaml]\n", ValueError),  # duplicate ids
    ("resources: [missing.yaml]\n", FileNotFoundError),
])
def test_renderer_refuses_what_it_does_not_implement(tmp_path, kustomization, error):
    folder = _write(tmp_path / "k", {"kustomization.yaml": HEADER + kustomization, "app.yaml": TINY_DEPLOYMENT})
    with pytest.raises(error):
        render(folder)


def test_renderer_refuses_a_non_kustomization_file_and_unknown_kinds(tmp_path):
    wrong_kind = _write(tmp_path / "a", {"kustomization.yaml": "apiVersion: v1\nkind: List\nresources: []\n"})
    with pytest.raises(UnsupportedKustomization):
        render(wrong_kind)
    unknown = _write(tmp_path / "b", {"kustomization.yaml": HEADER + "resources: [x.yaml]\nnamespace: n\n",
                                      "x.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"})
    with pytest.raises(UnsupportedKustomization):
        render(unknown)


def test_every_kustomization_in_k8s_is_rendered_by_these_tests():
    found = {path.parent for path in K8S.rglob("kustomization.yaml")}
    assert found == set(KUSTOMIZATIONS.values())
