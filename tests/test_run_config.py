from pathlib import Path

import pytest
import yaml

from components.domain.file_errors import InputFileError
from components.config.run_config import RunConfig, load_run_config
from tests.conftest import REPO


@pytest.mark.parametrize("name", ["toy", "sd15", "sd21"])
def test_shipped_configs_validate(name):
    config = load_run_config(REPO / "configs" / f"{name}.yaml")
    assert config.name == name
    # Relative paths are resolved against the config file's folder, not the working directory.
    if config.base_model.path is not None:
        assert config.base_model.path.is_absolute()


def test_toy_config_points_at_the_shipped_world():
    config = load_run_config(REPO / "configs" / "toy.yaml")
    assert (config.base_model.path / "model_index.json").is_file()
    assert (config.evaluation.detector.path / "config.json").is_file()
    assert (config.evaluation.clip_model / "config.json").is_file()
    # The world's quality bar is measured at its default sampling settings: the config must use them.
    from components.toyworld.world import DEFAULT_GUIDANCE, DEFAULT_STEPS

    assert (config.sampling.steps, config.sampling.guidance_scale) == (DEFAULT_STEPS, DEFAULT_GUIDANCE)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _toy_dict() -> dict:
    return yaml.safe_load((REPO / "configs" / "toy.yaml").read_text())


def _problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(InputFileError) as info:
        load_run_config(path)
    assert str(path) in str(info.value)
    return info.value.problems


def test_unknown_key_is_named(tmp_path):
    data = _toy_dict()
    data["erasure"]["lora_ti"]["rnak"] = 8
    (field, rule), = _problems(_write(tmp_path, data))
    assert field == "erasure.lora_ti.rnak"
    assert "unknown key" in rule


def test_bad_value_is_named(tmp_path):
    data = _toy_dict()
    data["erasure"]["lora_ti"]["rank"] = 0
    data["runtime"]["dtype"] = "float8"
    fields = dict(_problems(_write(tmp_path, data)))
    assert set(fields) == {"erasure.lora_ti.rank", "runtime.dtype"}
    assert "greater than 0" in fields["erasure.lora_ti.rank"]


def test_hub_model_needs_a_commit_hash(tmp_path):
    data = _toy_dict()
    data["base_model"] = {"hub_id": "org/model", "registry_name": "x"}
    (field, rule), = _problems(_write(tmp_path, data))
    assert field == "base_model" and "revision" in rule
    data["base_model"]["revision"] = "main"
    (field, rule), = _problems(_write(tmp_path, data))
    assert field == "base_model.revision"
    data["base_model"]["revision"] = "a" * 40
    assert load_run_config(_write(tmp_path, data)).base_model.source == "org/model"


def test_path_and_hub_id_are_exclusive(tmp_path):
    data = _toy_dict()
    data["base_model"]["hub_id"] = "org/model"
    data["base_model"]["revision"] = "b" * 40
    (field, rule), = _problems(_write(tmp_path, data))
    assert "exactly one" in rule


def test_forget_templates_need_the_placeholder(tmp_path):
    data = _toy_dict()
    data["evaluation"]["forget_templates"] = {"object": ["a photo of a thing"]}
    (field, rule), = _problems(_write(tmp_path, data))
    assert field == "evaluation" and "{concept}" in rule


def test_paraphrases_and_forget_templates_are_per_concept_and_per_kind_never_one_list(tmp_path):
    data = _toy_dict()
    data["evaluation"]["paraphrases"] = ["a round shape"]  # one list for every concept: the issue-8 bug
    data["evaluation"]["forget_templates"] = ["a {concept}"]
    problems = dict(_problems(_write(tmp_path, data)))
    assert "valid dictionary" in problems["evaluation.paraphrases"]
    assert "valid dictionary" in problems["evaluation.forget_templates"]
    data = _toy_dict()
    data["evaluation"]["vocabulary"]["captions"] = ["a {colour} {size}"]
    (field, rule), = _problems(_write(tmp_path, data))
    assert field == "evaluation.vocabulary" and "slots from ['colour', 'shape']" in rule


def test_yaml_syntax_and_shape_errors(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    (field, rule), = _problems(bad)
    assert "not valid YAML" in rule
    bad.write_text("- just\n- a list\n")
    (field, rule), = _problems(bad)
    assert "mapping" in rule
    (field, rule), = _problems(tmp_path / "missing.yaml")
    assert rule == "file not found"


def test_defaults_fill_optional_blocks():
    minimal = {"name": "m", "base_model": {"path": "/x", "registry_name": "m"},
               "evaluation": {"detector": {"kind": "toy", "path": "/d"}}}
    config = RunConfig.model_validate(minimal)
    assert config.erasure.method == "lora_ti"
    assert config.thresholds.max_forget_detection_rate == 0.10


def test_every_model_step_of_the_sd_configs_asks_for_the_gpu_and_toy_asks_for_nothing():
    from components.config.cluster_placement import step_settings
    from components.takedown.stages import MODEL_STEPS
    from zenml.config import ResourceSettings

    sd15 = load_run_config(REPO / "configs" / "sd15.yaml")
    for step in MODEL_STEPS:
        resources = ResourceSettings(**step_settings(sd15, None, step)["resources"])  # what ZenML will make of it
        assert (resources.gpu_count, resources.cpu_count, resources.memory) == (1, 4.0, "32GiB")
    assert step_settings(sd15, None, "register_adapter") == {}  # reads the weights' hash only: no GPU
    toy = load_run_config(REPO / "configs" / "toy.yaml")
    assert all(step_settings(toy, None, step) == {} for step in MODEL_STEPS)  # local CPU: defaults


def _with_compute(tmp_path: Path, compute: dict) -> list[tuple[str, str]]:
    return _problems(_write(tmp_path, _toy_dict() | {"compute": compute}))


def test_compute_refuses_unknown_steps_and_profiles_naming_the_field(tmp_path):
    gpu = {"device": "cuda", "gpu_count": 1}
    (field, rule), = _with_compute(tmp_path, {"profiles": {"model": gpu}, "steps": {"train_unlearnin": "model"}})
    assert field.startswith("compute.steps.train_unlearnin") and "'train_unlearning'" in rule
    (field, rule), = _with_compute(tmp_path, {"profiles": {"model": gpu}, "steps": {"train_unlearning": "gpu"}})
    assert field == "compute" and "steps.train_unlearning: no profile 'gpu'" in rule and "defined: model" in rule


def test_a_profile_device_must_match_its_gpu_request(tmp_path):
    (field, rule), = _with_compute(tmp_path, {"profiles": {"model": {"device": "cuda"}}})
    assert field == "compute.profiles.model" and "needs gpu_count >= 1" in rule
    (field, rule), = _with_compute(tmp_path, {"profiles": {"model": {"device": "cpu", "gpu_count": 1}}})
    assert field == "compute.profiles.model" and "reserves GPUs" in rule
    config = load_run_config(_write(tmp_path, _toy_dict() | {"compute": {
        "profiles": {"any": {"device": "auto", "gpu_count": 1}}, "steps": {"evaluate_adapter": "any"}}}))
    assert config.compute.profile("evaluate_adapter").device == "auto"
    assert config.compute.profile("learn_concept_token").device == "cpu"  # not listed: CPU
    with pytest.raises(KeyError, match="not a takedown step"):
        config.compute.profile("train_pending")  # a pipeline's own step name is a bug here, not a CPU step


def test_the_old_device_and_orchestration_keys_say_where_they_went(tmp_path):
    data = _toy_dict()
    data["runtime"]["device"] = "cuda"
    (field, rule), = _problems(_write(tmp_path, data))
    assert field == "runtime" and "compute.profiles.NAME.device" in rule
    (field, rule), = _problems(_write(tmp_path, _toy_dict() | {"orchestration": {"training": {"gpu_count": 1}}}))
    assert field == "" and "'orchestration' became 'compute'" in rule  # a top-level rule: no field to name


def test_every_erasure_method_has_its_params_block_and_an_unknown_one_is_refused_naming_them(tmp_path):
    # erasure.method comes from METHODS' keys; each method reads the block of the same name (benchmarks/run.py).
    from components.erasure.methods import METHODS
    from components.config.run_config import Erasure

    assert all(name in Erasure.model_fields for name in METHODS)
    data = _toy_dict()
    data["erasure"]["method"] = "esd"
    with pytest.raises(InputFileError) as err:
        load_run_config(_write(tmp_path, data))
    assert "erasure.method" in str(err.value) and "'lora_ti', 'te_ascent' or 'closed_form'" in str(err.value)
