"""Stack configs (configs/stacks/*.yaml): one schema, errors that name the file and the rule, and the placement
they produce without ZenML."""
import pytest
import yaml

from components.cluster_placement import k8s_quantity, pipeline_settings, training_step_settings
from components.file_errors import InputFileError
from components.run_config import load_run_config
from components.stack_config import load_stack_config
from conftest import REPO

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


def test_placement_asks_for_the_gpu_only_on_the_training_step():
    sd21, toy = load_run_config(REPO / "configs" / "sd21.yaml"), load_run_config(REPO / "configs" / "toy.yaml")
    k8s, kfp, local = (load_stack_config(STACKS / f"{n}.yaml") for n in ("kubernetes", "kubeflow", "local"))
    pod = training_step_settings(sd21, k8s)["orchestrator"]["pod_settings"]
    assert pod["resources"] == {"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"}}
    assert pod["tolerations"] == k8s.gpu_node.tolerations and pod["node_selectors"] == k8s.gpu_node.node_selectors
    shared = pipeline_settings(k8s)["orchestrator"]["pod_settings"]
    assert "resources" not in shared and "tolerations" not in shared  # every other step: no GPU
    assert pipeline_settings(k8s, scheduled=True)["orchestrator"]["concurrency_policy"] == "Forbid"
    assert training_step_settings(sd21, kfp) == {"resources": {"cpu_count": 4.0, "gpu_count": 1},
                                                 "orchestrator": {"pod_settings": {"node_selectors": {"accelerator": "nvidia.com/gpu"}}}}
    assert pipeline_settings(local) == {} and pipeline_settings(None) == {}
    toy_pod = training_step_settings(toy, k8s)["orchestrator"]["pod_settings"]
    assert toy_pod["resources"] == {} and "tolerations" not in toy_pod and "node_selectors" not in toy_pod  # no GPU asked


@pytest.mark.parametrize("memory, quantity", [("32GiB", "32Gi"), ("512MB", "512M"), ("2TiB", "2Ti"), ("100KB", "100k")])
def test_memory_becomes_a_kubernetes_quantity(memory, quantity):
    assert k8s_quantity(memory) == quantity
