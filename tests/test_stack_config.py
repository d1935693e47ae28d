"""Stack configs (configs/stacks/*.yaml): one schema, errors that name the file and the rule, and the placement
they produce without ZenML."""
import pytest
import yaml

from components.config.cluster_placement import k8s_quantity, pipeline_settings, step_settings, steps_settings
from components.domain.file_errors import InputFileError
from components.config.run_config import TAKEDOWN_STEPS, ComputeProfile, load_run_config
from components.config.stack_config import load_stack_config
from conftest import EXAMPLE_TICKET, REPO

STACKS = REPO / "configs" / "stacks"


@pytest.mark.parametrize("name", ["local", "kubernetes", "kubeflow"])
def test_every_shipped_stack_config_validates(name):
    stack = load_stack_config(STACKS / f"{name}.yaml")
    assert stack.orchestrator.flavor == name and stack.remote == (name != "local")


def test_a_cluster_stack_without_what_pods_need_names_the_file_and_the_keys(tmp_path):
    data = yaml.safe_load((STACKS / "kubernetes.yaml").read_text())
    del data["image"], data["mlflow"]
    data["gpu_node"]["node_selector"] = {"x": "y"}  # a typo of node_selectors
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputFileError) as err:
        load_stack_config(bad)
    text = str(err.value)
    assert "bad.yaml: gpu_node.node_selector: unknown key" in text
    data["gpu_node"] = {}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputFileError, match="a kubernetes stack needs image, mlflow"):
        load_stack_config(bad)


def test_placement_asks_for_the_gpu_exactly_on_the_steps_whose_profile_has_one():
    sd21, toy = load_run_config(REPO / "configs" / "sd21.yaml"), load_run_config(REPO / "configs" / "toy.yaml")
    k8s, kfp, local = (load_stack_config(STACKS / f"{n}.yaml") for n in ("kubernetes", "kubeflow", "local"))
    gpu_steps = {step for step in TAKEDOWN_STEPS if sd21.compute.profile(step).gpu_count}
    assert gpu_steps == {"learn_concept_token", "train_unlearning", "evaluate_adapter", "release"}
    for step in gpu_steps:
        pod = step_settings(sd21, k8s, step)["orchestrator"]["pod_settings"]
        assert pod["resources"] == {"requests": {"cpu": "4", "memory": "32Gi"},
                                    "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"}}
        assert pod["tolerations"] == k8s.gpu_node.tolerations and pod["node_selectors"] == k8s.gpu_node.node_selectors
        assert step_settings(sd21, kfp, step) == {"resources": {"cpu_count": 4.0, "gpu_count": 1},
                                                  "orchestrator": {"pod_settings": {
                                                      "node_selectors": {"accelerator": "nvidia.com/gpu"}}}}
    for step in set(TAKEDOWN_STEPS) - gpu_steps:  # CPU, nothing asked for: the pipeline-wide settings alone
        assert step_settings(sd21, k8s, step) == step_settings(sd21, kfp, step) == {}
    shared = pipeline_settings(k8s)["orchestrator"]["pod_settings"]
    assert "resources" not in shared and "tolerations" not in shared  # pipeline-wide: no GPU
    assert pipeline_settings(k8s, scheduled=True)["orchestrator"]["concurrency_policy"] == "Forbid"
    assert pipeline_settings(local) == {} and pipeline_settings(None) == {}
    assert all(step_settings(toy, k8s, step) == {} for step in TAKEDOWN_STEPS)  # no compute block: all CPU
    # A CPU profile with resources gets them, and still no GPU node.
    light = sd21.model_copy(update={"compute": sd21.compute.model_copy(update={
        "profiles": {**sd21.compute.profiles, "light": ComputeProfile(cpu_count=1, memory="2GiB")},
        "steps": {**sd21.compute.steps, "register_adapter": "light"}})})
    pod = step_settings(light, k8s, "register_adapter")["orchestrator"]["pod_settings"]
    assert pod["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    assert "tolerations" not in pod and "node_selectors" not in pod and pod["volumes"] == shared["volumes"]
    assert step_settings(light, kfp, "register_adapter") == {"resources": {"cpu_count": 1.0}}


def test_both_pipelines_place_each_step_by_the_stage_it_runs():
    from pipelines.sweep_pipeline import STAGES as SWEEP
    from pipelines.takedown_pipeline import STAGES as TAKEDOWN

    sd21, k8s = load_run_config(REPO / "configs" / "sd21.yaml"), load_stack_config(STACKS / "kubernetes.yaml")
    # the same stage steps in both (one implementation), each placed by its own name
    assert {k: v for k, v in SWEEP.items() if v} == {k: v for k, v in TAKEDOWN.items() if v} == {s: s for s in TAKEDOWN_STEPS}
    sweep = steps_settings(sd21, k8s, SWEEP)
    assert sweep == steps_settings(sd21, k8s, TAKEDOWN) and sweep["train_unlearning"]
    assert not {"find_pending_tickets", "flag_failures", "admit_ticket"} & set(sweep)  # run no stage: placed pipeline-wide
    assert set(steps_settings(sd21, None, SWEEP)) == {"learn_concept_token", "train_unlearning", "evaluate_adapter",
                                                      "release"}


class AskedFor(Exception):
    """Stands in for loading the model: carries the device the stage asked for."""


@pytest.mark.parametrize("config", ["sd15", "sd21", "toy", "a device per step"])
def test_each_stage_loads_the_model_on_its_steps_profile_device_and_register_loads_none(config, tmp_path, monkeypatch):
    """What the cluster tests rely on: stages.model_device is the device each stage's code really asks for."""
    from components.models import loading as model_loading
    from components.takedown import stages
    from conftest import toy_config_file

    if config == "a device per step":  # a stage asking by another step's name shows up here
        toy_config_file(tmp_path, config, compute={
            "profiles": {"gpu": {"device": "cuda", "gpu_count": 1}, "either": {"device": "auto", "gpu_count": 1}},
            "steps": {"learn_concept_token": "either", "train_unlearning": "gpu"}})
    path = tmp_path / f"{config}.yaml" if config == "a device per step" else REPO / "configs" / f"{config}.yaml"

    def shared_pipeline(identity, device="cpu", *args, **kwargs):
        raise AskedFor(device)

    from types import SimpleNamespace

    from components.takedown.resolved_inputs import BaseModelRef, ResolvedInputs

    # the SD checkpoints are not on this machine: their identity as a resolving step would have recorded it
    inputs = ResolvedInputs(ticket_path=str(EXAMPLE_TICKET), config_path=str(path), ticket_id="TOY-0001", run_key="key",
                            base=BaseModelRef(source="base", revision=None, folder=str(tmp_path), weights_sha256="0" * 64,
                                              files_fingerprint=""))
    monkeypatch.setattr(model_loading, "shared_pipeline", shared_pipeline)
    run_config = load_run_config(path)
    from components.evaluation.decision import Decision
    from components.registry.model_registry import RegisteredVersion
    from components.takedown.batch import TakedownBatch, TicketRun
    from components.takedown.releasing import release_batch

    # the release stage: a ticket its gate approved, on its way into the candidate release
    approved = TicketRun(ticket_path=str(EXAMPLE_TICKET), ticket_id="TOY-0001", run_key="key", inputs=inputs, token="token",
                         result=SimpleNamespace(method="closed_form"), version=RegisteredVersion("m", "1", "r", "s"),
                         decision=Decision(True, ()))
    calls = {"learn_concept_token": lambda: stages.learn_concept_token(inputs, tmp_path),
             "train_unlearning": lambda: stages.train_unlearning(inputs, "token", tmp_path),
             "evaluate_adapter": lambda: stages.evaluate(inputs, "token", "adapter", tmp_path),
             "release": lambda: release_batch(TakedownBatch(str(path), [approved]), None, tmp_path, "takedown")}
    assert set(calls) == set(stages.MODEL_STEPS)
    for step, stage in calls.items():
        with pytest.raises(AskedFor) as asked:
            stage()
        assert asked.value.args[0] == stages.model_device(run_config, step) == run_config.compute.profile(step).device

    class Reached(Exception):
        pass

    # register: past the base model's identity (from the resolved inputs) to the adapter, without loading the model
    monkeypatch.setattr(model_loading, "load_pipeline", lambda *a, **k: pytest.fail("register loaded the model"))
    monkeypatch.setattr(model_loading, "shared_pipeline", lambda *a, **k: pytest.fail("register loaded the model"))
    monkeypatch.setattr("components.registry.lineage.lineage_tags", lambda *a, **k: (_ for _ in ()).throw(Reached()))
    with pytest.raises(Reached):
        stages.register(inputs, None, None, SimpleNamespace(metrics={}), {}, tmp_path, registry=None)
    assert stages.model_device(run_config, "register_adapter") is None


def test_the_local_stack_turns_off_rich_tracebacks(monkeypatch, tmp_path):
    import os

    from pipelines import local_stack

    environment = {"LETHE_HOME": str(tmp_path)}
    monkeypatch.setattr(os, "environ", environment)  # configure_environment writes os.environ: keep it to this test
    local_stack.configure_environment()
    assert environment["ZENML_ENABLE_RICH_TRACEBACK"] == "false" and environment["ZENML_LOGGING_VERBOSITY"] == "INFO"


QUIET = """
import os, sys
os.environ["LETHE_HOME"] = sys.argv[1]
from pipelines.local_stack import configure_environment
if sys.argv[2] == "configured":
    configure_environment()
from components.models.loading import load_pipeline
from components.toyworld.world import PIPELINE_DIR
load_pipeline(PIPELINE_DIR)
from transformers.utils import logging
logging.get_logger("transformers.utils.import_utils").warning("another notice")
"""


def test_the_local_stack_drops_the_torchvision_notice_and_nothing_else(tmp_path):
    import subprocess
    import sys

    def stderr(mode):
        return subprocess.run([sys.executable, "-c", QUIET, str(tmp_path), mode], cwd=REPO, capture_output=True,
                              text=True, timeout=300, check=True).stderr
    assert "requires torchvision" in stderr("plain")  # the notice is there to drop
    quiet = stderr("configured")
    assert "requires torchvision" not in quiet and "another notice" in quiet


GX_NOTICE = """
import logging, os, sys
os.environ["LETHE_HOME"] = sys.argv[1]
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
if sys.argv[2] == "configured":
    from pipelines.local_stack import configure_environment
    configure_environment()
for name in ("great_expectations", "great_expectations.data_context.types.base"):
    logging.getLogger(name).setLevel(logging.INFO)  # as a pipeline step's logging shows it
import great_expectations as gx
gx.get_context(mode="ephemeral")  # what validation does: GX logs its temporary docs folder
logging.getLogger("great_expectations.data_context.types.base").info("another notice")
"""


def test_the_local_stack_drops_great_expectations_docs_site_notice_and_nothing_else(tmp_path):
    import subprocess
    import sys

    def stderr(mode):
        return subprocess.run([sys.executable, "-c", GX_NOTICE, str(tmp_path), mode], cwd=REPO, capture_output=True,
                              text=True, timeout=300, check=True).stderr
    assert "ephemeral docs site" in stderr("plain")
    quiet = stderr("configured")
    assert "ephemeral docs site" not in quiet and "another notice" in quiet


@pytest.mark.parametrize("memory, quantity", [("32GiB", "32Gi"), ("512MB", "512M"), ("2TiB", "2Ti"), ("100KB", "100k")])
def test_memory_becomes_a_kubernetes_quantity(memory, quantity):
    assert k8s_quantity(memory) == quantity
