"""The embedded default stack: ZenML's local SQLite store and an MLflow sqlite store, inside `.lethe/`.

No server to start and nothing leaves the machine (telemetry off). To use your own servers instead:
set ZENML_STORE_URL (+ credentials) and LETHE_ZENML_STACK to run on your stack, or only
LETHE_MLFLOW_TRACKING_URI to keep the local ZenML store but track and register in your MLflow.
Call `configure_environment()` before ZenML is imported: ZenML reads these variables on import.
"""
from __future__ import annotations

import os

from steps.work_folder import REPO_ROOT, lethe_home

STACK_NAME = "lethe-local"
TRACKER_NAME = "lethe-mlflow-tracker"
REGISTRY_NAME = "lethe-mlflow-registry"


class _DropNotice:
    """A logging filter that drops one known third-party notice (and nothing else from that logger)."""

    def __init__(self, text: str):
        self.text = text

    def filter(self, record) -> bool:
        return self.text not in record.getMessage()


def configure_environment() -> None:
    import logging
    import warnings

    # ZenML at INFO prints each step's start and duration; the libraries inside the steps stay quiet.
    for name in ("great_expectations", "mlflow", "alembic", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Notices about things Lethe chose: no torchvision (transformers then uses its PIL image processors, which
    # the pipelines' feature extractors are), and google-api-core's Python-version FutureWarning.
    # Great Expectations' "temporary directory ... for ephemeral docs site" is logged at INFO inside the
    # validation step, where ZenML's step logging shows INFO whatever level was set above: a filter holds.
    for logger_name, text in (("transformers.utils.import_utils", "requires torchvision (not installed)"),
                              ("great_expectations.data_context.types.base", "for ephemeral docs site")):
        notices = logging.getLogger(logger_name)
        if not any(isinstance(f, _DropNotice) for f in notices.filters):  # once, however often this is called
            notices.addFilter(_DropNotice(text))
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core")
    home = lethe_home()
    home.mkdir(parents=True, exist_ok=True)
    for key, value in {"ZENML_CONFIG_PATH": str(home / "zenml"), "ZENML_ANALYTICS_OPT_IN": "false",
                       "ZENML_LOGGING_VERBOSITY": "INFO",  # ZenML's "step X has started / finished in Ns" lines
                       "ZENML_ENABLE_RICH_TRACEBACK": "false",
                       "AUTO_OPEN_DASHBOARD": "false", "MLFLOW_ENABLE_TELEMETRY": "false",
                       "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}.items():
        os.environ.setdefault(key, value)


def local_tracking_uri() -> str:
    return os.environ.get("LETHE_MLFLOW_TRACKING_URI") or f"sqlite:///{lethe_home() / 'mlflow.db'}"


def ensure_stack() -> str:
    """Activate LETHE_ZENML_STACK if set; otherwise create (once) and activate the lethe-local stack.
    Returns the name of the active stack."""
    from zenml.client import Client
    from zenml.enums import StackComponentType as Kind
    from zenml.utils.source_utils import set_custom_source_root

    set_custom_source_root(str(REPO_ROOT))  # steps import as `steps.*` from the project root, whoever calls
    client = Client()
    wanted = os.environ.get("LETHE_ZENML_STACK")
    if wanted:
        client.activate_stack(wanted)
        return wanted
    existing = {(c.type, c.name) for c in client.list_stack_components(size=1000)}
    if (Kind.EXPERIMENT_TRACKER, TRACKER_NAME) not in existing:
        client.create_stack_component(TRACKER_NAME, "mlflow", Kind.EXPERIMENT_TRACKER,
                                      {"tracking_uri": local_tracking_uri(), "tracking_username": "",
                                       "tracking_password": ""})
    if (Kind.MODEL_REGISTRY, REGISTRY_NAME) not in existing:
        client.create_stack_component(REGISTRY_NAME, "mlflow", Kind.MODEL_REGISTRY, {})
    if STACK_NAME not in {s.name for s in client.list_stacks(size=1000)}:
        client.create_stack(STACK_NAME, components={Kind.ORCHESTRATOR: "default", Kind.ARTIFACT_STORE: "default",
                                                    Kind.EXPERIMENT_TRACKER: TRACKER_NAME,
                                                    Kind.MODEL_REGISTRY: REGISTRY_NAME})
    client.activate_stack(STACK_NAME)
    return STACK_NAME
