"""Which MLflow the register and gate steps write to: the active ZenML stack's experiment tracker."""
from __future__ import annotations

import os

from components.registry.model_registry import AdapterRegistry
from steps.work_folder import lethe_home


def active_registry() -> AdapterRegistry:
    from zenml.client import Client

    tracker = Client().active_stack.experiment_tracker
    uri = tracker.get_tracking_uri() if tracker is not None else os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise RuntimeError("the active ZenML stack has no MLflow experiment tracker and MLFLOW_TRACKING_URI is not set; "
                           "run `lethe takedown` once to create the local stack, or register your own")
    if hasattr(tracker, "configure_mlflow"):
        # The MLflow server's basic-auth credentials (the stack config's ZenML secret) reach the client as
        # MLFLOW_TRACKING_USERNAME/PASSWORD; the steps do not use the tracker's autologging, so ask for them here.
        tracker.configure_mlflow()
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    artifacts = (lethe_home() / "mlflow-artifacts").as_uri() if local else None  # a server keeps its own default
    return AdapterRegistry(uri, artifact_location=artifacts)
