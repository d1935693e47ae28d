"""The stack config: where a takedown runs (configs/stacks/*.yaml), validated like the run config.

A run config says what to erase and how (model, method, thresholds, each step's device/GPU/CPU/memory);
a stack config says on which infrastructure: the ZenML orchestrator, artefact store, container registry,
the MLflow server, the shared volume and the GPU node pool. The same sd21.yaml then runs on any cluster.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import Field, model_validator

from ..domain.file_errors import load_validated, write_json_schema
from .run_config import Strict

NAME = r"^[A-Za-z0-9][\w.-]*$"
SECRET_NAME = r"^[A-Za-z0-9_][\w-]*$"


class Orchestrator(Strict):
    flavor: Literal["local", "kubernetes", "kubeflow"]
    kubernetes_context: str | None = Field(default=None, description="kubeconfig context of the cluster; None with "
                                           "kubernetes: the client runs inside the cluster (e.g. the sweep pod).")
    namespace: str = Field(default="lethe", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    service_account: str = Field(default="lethe-runner", description="k8s/base's least-privilege ServiceAccount.")
    kubeflow_host: str | None = Field(default=None, description="Kubeflow Pipelines API, e.g. https://kubeflow.example.com/pipeline")
    user_namespace: str | None = Field(default=None, description="Kubeflow profile namespace the runs go to.")


class ArtifactStore(Strict):
    path: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]*(/.*)?$", description="e.g. s3://lethe-artifacts/zenml")
    endpoint_url: str | None = Field(default=None, description="MinIO / other S3-compatible endpoint; None: AWS S3.")
    secret: str | None = Field(default=None, pattern=SECRET_NAME, description="ZenML secret with aws_access_key_id and "
                               "aws_secret_access_key; None: the pods' own cloud identity.")


class MLflowServer(Strict):
    tracking_uri: str = Field(pattern=r"^https?://", description="The in-cluster MLflow (k8s/base: mlflow.lethe.svc).")
    secret: str = Field(pattern=SECRET_NAME, description="ZenML secret with `username` and `password` (MLflow basic auth).")


class SharedVolume(Strict):
    """Steps hand each other files (token, adapter, report) through LETHE_HOME, so every step pod mounts it."""
    claim_name: str = Field(default="lethe-data", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    mount_path: str = Field(default="/var/lib/lethe", description="LETHE_HOME inside the pods.")

    @model_validator(mode="after")
    def _absolute(self) -> "SharedVolume":
        if not PurePosixPath(self.mount_path).is_absolute():
            raise ValueError(f"mount_path must be absolute, got {self.mount_path!r}")
        return self

    def holds(self, path) -> bool:
        """Whether an absolute path (as the pods see it) lies on this volume."""
        path = PurePosixPath(str(path))
        return path.is_absolute() and path.is_relative_to(self.mount_path)


class GpuNode(Strict):
    """Where a step whose compute profile has a GPU goes: the GPU node pool's labels and taints (cluster facts,
    not model facts)."""
    node_selectors: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="Kubernetes Toleration objects.")
    affinity: dict[str, Any] | None = Field(default=None, description="A Kubernetes Affinity object (kubernetes flavor).")
    accelerator: str | None = Field(default=None, description="Kubeflow: the accelerator type KFP requests with the GPU "
                                    "(e.g. nvidia.com/gpu or NVIDIA_TESLA_T4); Kubeflow honours no tolerations.")


class StackConfig(Strict):
    name: str = Field(pattern=NAME, description="The ZenML stack name; its components are named after it.")
    orchestrator: Orchestrator
    artifact_store: ArtifactStore | None = None
    container_registry: str | None = Field(default=None, description="e.g. registry.example.com/lethe")
    image: str | None = Field(default=None, description="The step image (docker/Dockerfile), built and pushed by CI; "
                              "ZenML uses it as is instead of building one.")
    image_workdir: str = Field(default="/app", description="Where the image holds the project: configs/ shipped in "
                               "the repository are found there by the pods.")
    mlflow: MLflowServer | None = None
    shared_volume: SharedVolume = SharedVolume()
    gpu_node: GpuNode = GpuNode()  # the other steps go wherever the scheduler puts them; GPU taints keep them off GPU nodes

    @model_validator(mode="after")
    def _remote_needs(self) -> "StackConfig":
        if self.orchestrator.flavor == "local":
            return self
        missing = [key for key in ("artifact_store", "container_registry", "image", "mlflow") if getattr(self, key) is None]
        if missing:
            raise ValueError(f"a {self.orchestrator.flavor} stack needs {', '.join(missing)}: step pods cannot see "
                             "this machine's files, images or database")
        orch = self.orchestrator
        if orch.flavor == "kubeflow" and not orch.kubeflow_host and not orch.kubernetes_context:
            raise ValueError("a kubeflow stack needs orchestrator.kubeflow_host or orchestrator.kubernetes_context")
        return self

    @property
    def remote(self) -> bool:
        return self.orchestrator.flavor != "local"


def load_stack_config(path) -> StackConfig:
    """Read and validate a stack config; raises InputFileError naming the file, key and rule."""
    from pathlib import Path

    return load_validated(Path(path), StackConfig)


def write_stack_config_schema(out) -> object:
    return write_json_schema(StackConfig, out)
