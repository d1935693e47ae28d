"""Where each step's pod goes: ZenML settings (plain dicts) from the run config and the stack config.

Placement is data: the run config's `compute` block gives each takedown step a profile (device, GPU count,
CPU, memory), the stack config says where the GPU nodes are, and `step_settings` turns both into one step's
settings by its name. A step whose profile has a GPU goes to the GPU node; every other step stays on CPU nodes.
The orchestrators differ:
- Kubernetes ignores ZenML's ResourceSettings, so the GPU limit (a string), the tolerations and the node
  selector/affinity go into the step's `pod_settings`; every pod also mounts the shared volume.
- Kubeflow Pipelines 2 honours only a node selector and ResourceSettings(gpu_count): the GPU request is
  the `accelerator` node selector plus gpu_count on the step.
- The local orchestrator ignores all of it; ResourceSettings are still attached so the run records them.
Plain dicts keep this testable without ZenML; ZenML validates them against its settings classes.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .run_config import TAKEDOWN_STEPS, ComputeProfile, RunConfig
from .stack_config import StackConfig

_K8S_MEMORY_UNITS = {"KB": "k", "KiB": "Ki", "MB": "M", "MiB": "Mi", "GB": "G", "GiB": "Gi", "TB": "T", "TiB": "Ti"}
IMAGE_USER = 10001  # docker/Dockerfile's non-root user
# ZenML 0.98's Kubeflow orchestrator sends no GPU request (step_settings, below): a step that asks for a GPU would
# start on a CPU node and stop at model loading, after the run was submitted. Such a run is refused before it is
# (placement_problems); set True once the strict xfail in tests/test_cluster_stacks.py starts passing.
KUBEFLOW_REQUESTS_GPUS = False
# Pod-level, through `additional_pod_spec_args`: ZenML 0.98 merges `container_security_context` into the
# container's snake_case to_dict(), which the API server does not read (see tests/test_cluster_stacks.py).
# Step pods write the Hugging Face / torch caches and ZenML's temp files: the root filesystem stays writable.
NON_ROOT_POD = {"runAsNonRoot": True, "runAsUser": IMAGE_USER, "runAsGroup": IMAGE_USER, "fsGroup": IMAGE_USER,
                "seccompProfile": {"type": "RuntimeDefault"}}


def k8s_quantity(memory: str) -> str:
    """'32GiB' (ZenML/run-config style) -> '32Gi' (Kubernetes quantity)."""
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]+)", memory).groups()
    return number + _K8S_MEMORY_UNITS[unit]


def _pod_resources(profile: ComputeProfile) -> dict:
    requests, limits = {}, {}
    if profile.cpu_count:
        requests["cpu"] = f"{profile.cpu_count:g}"
    if profile.memory:
        requests["memory"] = limits["memory"] = k8s_quantity(profile.memory)
    if profile.gpu_count:
        limits["nvidia.com/gpu"] = str(profile.gpu_count)  # extended resources: limits only, as strings
    return {key: value for key, value in (("requests", requests), ("limits", limits)) if value}


def _shared_pod_settings(stack: StackConfig) -> dict:
    volume = stack.shared_volume
    return {"volumes": [{"name": "lethe-data", "persistentVolumeClaim": {"claimName": volume.claim_name}}],
            "volume_mounts": [{"name": "lethe-data", "mountPath": volume.mount_path}],
            "env": [{"name": "LETHE_HOME", "value": volume.mount_path}, {"name": "HF_HUB_OFFLINE", "value": "1"}],
            # No service links: k8s/'s `mlflow` Service would inject MLFLOW_PORT=tcp://..., which MLflow reads as config.
            "additional_pod_spec_args": {"security_context": NON_ROOT_POD, "enable_service_links": False}}


def docker_settings(stack: StackConfig) -> dict:
    """Run the steps in the prebuilt step image as it is: its baked-in code is what the audit trail names."""
    return {"parent_image": stack.image, "skip_build": True, "allow_download_from_code_repository": False,
            "allow_download_from_artifact_store": False, "allow_including_files_in_images": False}


def pipeline_settings(stack: StackConfig | None, scheduled: bool = False) -> dict:
    """Settings for every step of a pipeline on this stack."""
    if stack is None or not stack.remote:
        return {}
    if stack.orchestrator.flavor == "kubernetes":
        orchestrator = {"service_account_name": stack.orchestrator.service_account,
                        "step_pod_service_account_name": stack.orchestrator.service_account,
                        "pod_settings": _shared_pod_settings(stack), "orchestrator_pod_settings": _shared_pod_settings(stack)}
        if scheduled:
            orchestrator |= {"concurrency_policy": "Forbid", "successful_jobs_history_limit": 3, "failed_jobs_history_limit": 5}
    else:  # kubeflow; its recurring runs default to max_concurrency 1 (kfp Client.create_recurring_run)
        orchestrator = {"user_namespace": stack.orchestrator.user_namespace} if stack.orchestrator.user_namespace else {}
    return {"orchestrator": orchestrator, "docker": docker_settings(stack)}


def step_settings(config: RunConfig, stack: StackConfig | None, step: str) -> dict:
    """Settings for one takedown step (components.config.run_config.TAKEDOWN_STEPS) from its compute profile."""
    profile = config.compute.profile(step)
    if not profile.resource_settings():
        return {}  # the orchestrator's defaults and the pipeline-wide settings (no GPU) place it
    settings: dict = {"resources": profile.resource_settings()}
    if stack is None or not stack.remote:
        return settings
    gpu = stack.gpu_node
    if stack.orchestrator.flavor == "kubernetes":
        pod = _shared_pod_settings(stack) | {"resources": _pod_resources(profile)}
        if profile.gpu_count:  # a CPU profile stays off the GPU pool
            pod |= {"node_selectors": dict(gpu.node_selectors), "tolerations": list(gpu.tolerations)}
            if gpu.affinity:
                pod["affinity"] = gpu.affinity
        settings["orchestrator"] = {"pod_settings": pod}
    else:  # kubeflow
        # ZenML 0.98 hands KFP's set_memory_limit a float (ResourceSettings.get_memory()), which kfp 2.16 rejects:
        # with a memory request the pipeline cannot even compile (tests/test_cluster_stacks.py), so none is sent.
        settings["resources"] = {k: v for k, v in settings.get("resources", {}).items() if k != "memory"}
        if not settings["resources"]:
            del settings["resources"]
        if gpu.accelerator and profile.gpu_count:
            # ZenML's documented form. ZenML 0.98 loses it: KubeflowOrchestratorSettings' "before" validator rebuilds
            # pod_settings from a legacy top-level `node_selectors` that its compiler strips as unknown, so the
            # KFP spec gets no GPU (xfail in tests/test_cluster_stacks.py; README: what the operator does meanwhile).
            settings["orchestrator"] = {"pod_settings": {"node_selectors": {"accelerator": gpu.accelerator}}}
    return settings


def steps_settings(config: RunConfig, stack: StackConfig | None, stages: Mapping[str, str | None]) -> dict:
    """Per-step settings of a pipeline whose steps run the takedown stages `stages` maps them to (None: a step
    that runs none, placed by the pipeline-wide settings alone); steps that need nothing are left out."""
    out = {}
    for name, stage in stages.items():
        settings = step_settings(config, stack, stage) if stage else {}
        if settings:
            out[name] = settings
    return out


def placement_problems(config: RunConfig, stack: StackConfig | None) -> list[tuple[str, str]]:
    """(field, rule) for each step this stack cannot place as the run config asks: today, a step that needs a GPU
    on a Kubeflow stack (KUBEFLOW_REQUESTS_GPUS)."""
    if stack is None or not stack.remote or stack.orchestrator.flavor != "kubeflow" or KUBEFLOW_REQUESTS_GPUS:
        return []
    on_gpu = [step for step in TAKEDOWN_STEPS if config.compute.profile(step).gpu_count]
    if not on_gpu:
        return []
    return [("compute", f"steps {', '.join(on_gpu)} need a GPU, which stack {stack.name!r} (kubeflow) cannot give "
                        "them: ZenML 0.98's Kubeflow orchestrator sends no GPU request, so their pods would stop at "
                        "model loading; run this config on a kubernetes stack (configs/stacks/kubernetes.yaml), or "
                        "on kubeflow with profiles that are all device: cpu")]
