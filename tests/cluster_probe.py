"""Run in a subprocess by test_cluster_stacks.py (ZenML reads its store location at import): compiles Lethe's
pipelines against the registered cluster stacks and builds, with ZenML's own building blocks, what its
orchestrators would submit. Contacts no cluster. Prints one JSON object.

    python tests/cluster_probe.py STACK_CONFIG RUN_CONFIG
"""
import json
import sys
import types
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def compile_pipeline(pipeline, **parameters):
    pipeline = pipeline.copy()
    pipeline.prepare(**parameters)
    args = pipeline._run_args  # what `with_options` stored; `_compile` is what a run calls with them
    snapshot, schedule, _ = pipeline._compile(steps=args.get("step_configurations"), settings=args.get("settings"),
                                              schedule=args.get("schedule"))
    return snapshot, schedule


def kubernetes_pods(snapshot, orchestrator, image: str) -> dict:
    """Each step's pod as the Kubernetes orchestrator's entrypoint builds it (kubernetes_orchestrator_entrypoint)."""
    from kubernetes.client import ApiClient
    from zenml.entrypoints.step_entrypoint_configuration import StepEntrypointConfiguration
    from zenml.integrations.kubernetes import kube_utils
    from zenml.integrations.kubernetes.manifest_utils import build_pod_manifest

    pods = {}
    for name, step in snapshot.step_configurations.items():
        settings = orchestrator.get_settings(step)
        pod_settings = kube_utils.apply_default_resource_requests(memory="400Mi", pod_settings=settings.pod_settings)
        pod = build_pod_manifest(
            pod_name=f"probe-{name.replace('_', '-')}", image_name=image,
            command=StepEntrypointConfiguration.get_entrypoint_command(),
            args=StepEntrypointConfiguration.get_entrypoint_arguments(
                step_name=name, snapshot_id="00000000-0000-0000-0000-000000000000"),
            privileged=settings.privileged, pod_settings=pod_settings, env={},
            service_account_name=settings.step_pod_service_account_name or settings.service_account_name,
            mount_local_stores=False, labels={"step_name": name})
        pods[name] = ApiClient().sanitize_for_serialization(pod)
    return pods


def scheduled_cron_job(snapshot, schedule, orchestrator) -> dict:
    """The CronJob the Kubernetes orchestrator creates for a schedule (its submit_pipeline, schedule branch)."""
    from kubernetes import client as k8s
    from zenml.integrations.kubernetes.manifest_utils import build_cron_job_manifest

    settings = orchestrator.get_settings(snapshot)
    template = k8s.V1JobTemplateSpec(metadata=k8s.V1ObjectMeta(name="lethe-sweep"),
                                     spec=k8s.V1JobSpec(template=k8s.V1PodTemplateSpec(spec=k8s.V1PodSpec(containers=[]))))
    cron = build_cron_job_manifest(job_template=template, cron_expression=schedule.cron_expression,
                                   successful_jobs_history_limit=settings.successful_jobs_history_limit,
                                   failed_jobs_history_limit=settings.failed_jobs_history_limit,
                                   concurrency_policy=settings.concurrency_policy,
                                   starting_deadline_seconds=settings.starting_deadline_seconds)
    return k8s.ApiClient().sanitize_for_serialization(cron)


def kubeflow_spec(snapshot, stack, image: str) -> dict:
    """The KFP pipeline spec the Kubeflow orchestrator compiles in submit_pipeline; the upload is stubbed out."""
    import yaml

    orchestrator = stack.orchestrator
    written = {}
    stand_in = types.SimpleNamespace(pipeline_configuration=snapshot.pipeline_configuration,
                                     step_configurations=snapshot.step_configurations,
                                     id="00000000-0000-0000-0000-000000000000")
    with mock.patch.object(type(orchestrator), "get_image", lambda self, snapshot, step_name=None: image), \
         mock.patch.object(type(orchestrator), "_upload_and_run_pipeline",
                           lambda self, snapshot, pipeline_file_path, run_name: written.setdefault("path", pipeline_file_path)):
        orchestrator.submit_pipeline(stand_in, stack, base_environment={},
                                     step_environments={name: {} for name in snapshot.step_configurations})
    return yaml.safe_load(Path(written["path"]).read_text())


def main() -> None:
    stack_path, config_path = Path(sys.argv[1]), Path(sys.argv[2])
    from components.config.run_config import load_run_config
    from components.config.stack_config import load_stack_config
    from pipelines.cluster_commands import scheduled_sweep
    from pipelines.stack_activation import activate, pipeline_options
    from pipelines.sweep_pipeline import STAGES as SWEEP_STAGES
    from pipelines.takedown_pipeline import STAGES as TAKEDOWN_STAGES, takedown_pipeline

    stack_config, config = load_stack_config(stack_path), load_run_config(config_path)
    activate(stack_config)
    from zenml.client import Client

    stack = Client().active_stack
    import os

    from steps.registry_target import active_registry

    registry = active_registry()  # what the register and gate steps build in their pods; contacts nothing yet
    credentials = {"uri": registry.tracking_uri, "username": os.environ.get("MLFLOW_TRACKING_USERNAME"),
                   "password_set": bool(os.environ.get("MLFLOW_TRACKING_PASSWORD"))}
    takedown = takedown_pipeline.with_options(**pipeline_options(config, stack_config, TAKEDOWN_STAGES))
    snapshot, _ = compile_pipeline(takedown, ticket_path="/var/lib/lethe/inbox/t/ticket.yaml",
                                   config_path=f"/app/configs/{config_path.name}", ticket_id="T-1", run_key="k" * 64)
    # Which takedown stage each pipeline step runs: the test asks the run config what device that stage loads on.
    out = {"stages": {"takedown": TAKEDOWN_STAGES, "sweep": SWEEP_STAGES}, "takedown_steps": list(snapshot.step_configurations),
           "upstream": {n: s.spec.upstream_steps for n, s in snapshot.step_configurations.items()},
           "docker": snapshot.pipeline_configuration.docker_settings.model_dump(mode="json"), "registry": credentials}
    sweep, parameters = scheduled_sweep("0 3 * * *", "s3://lethe-inbox/tickets", config_path, stack_config, "probe")
    sweep_snapshot, schedule = compile_pipeline(sweep, **parameters)
    out["sweep_parameters"] = parameters
    out["schedule"] = {"cron": schedule.cron_expression, "name": schedule.name}
    if stack_config.orchestrator.flavor == "kubernetes":
        out["takedown_pods"] = kubernetes_pods(snapshot, stack.orchestrator, stack_config.image)
        out["sweep_pods"] = kubernetes_pods(sweep_snapshot, stack.orchestrator, stack_config.image)
        out["sweep_cron_job"] = scheduled_cron_job(sweep_snapshot, schedule, stack.orchestrator)
    else:
        out["takedown_kfp"] = kubeflow_spec(snapshot, stack, stack_config.image)
        out["sweep_kfp"] = kubeflow_spec(sweep_snapshot, stack, stack_config.image)  # the schedule is not compiled in
    print("PROBE-JSON " + json.dumps(out))


if __name__ == "__main__":
    main()
