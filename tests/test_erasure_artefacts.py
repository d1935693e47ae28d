"""Release safety: results save as safetensors with sha256, load back exactly, refuse tampering and
the wrong base, and fusing gives the same model as loading the adapter."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from components.erasure.denoising import encode, tokenize
from components.erasure.lora_adapter import LORA_FILE, NORM_FILE
from components.erasure.methods import erase
from components.erasure.request import Concept, ErasureRequest
from components.erasure.result import MANIFEST, ArtefactError, ErasureResult
from components.erasure.result_kinds import RESULT_KINDS, load_result
from components.domain.hashing import file_sha256
from components.erasure.tensors import BaseMismatchError, named_tensors, set_tensor

PROMPTS = ["a red circle", "a photo of a blue square", "a circle", ""]


def states(pipe) -> torch.Tensor:
    with torch.no_grad():
        return encode(pipe.text_encoder, tokenize(pipe.tokenizer, PROMPTS, pipe.text_encoder.device))


def images(pipe) -> torch.Tensor:
    return torch.from_numpy(pipe(["a red circle", "a green square"], num_inference_steps=10, guidance_scale=5.0,
                                 output_type="np", generator=torch.Generator().manual_seed(3)).images)


@pytest.fixture(scope="module")
def quick_lora(toy_world, toy_config, circle_images, circle_token):
    """Method A for a few steps with alpha != rank (so a wrong scale on load would show)."""
    model, _ = toy_world
    block = toy_config.erasure.lora_ti.model_copy(update={"steps": 6, "rank": 2, "alpha": 8.0})
    config = toy_config.erasure.model_copy(update={"method": "lora_ti", "lora_ti": block})
    request = ErasureRequest([Concept("circle")], images=circle_images, retain_prompts=["a red square"],
                             learned_token=circle_token)
    return erase(model.pipeline, request, config)


def test_saved_folder_is_safetensors_with_hashes(quick_lora, tmp_path):
    folder = quick_lora.save(tmp_path / "a")
    manifest = json.loads((folder / MANIFEST).read_text())
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([MANIFEST, LORA_FILE, NORM_FILE])
    assert manifest["files"] == {n: file_sha256(folder / n) for n in (LORA_FILE, NORM_FILE)}
    assert manifest["changed_tensors"] == quick_lora.changed_tensors() and manifest["method"] == "lora_ti"


def test_diffusers_load_lora_weights_reproduces_method_a(quick_lora, fresh_toy_pipeline, tmp_path):
    folder = quick_lora.save(tmp_path / "a")
    ours = fresh_toy_pipeline()
    quick_lora.apply(ours)
    plain = fresh_toy_pipeline()
    plain.load_lora_weights(str(folder))  # diffusers alone, from the folder: rank 2, alpha 8 from the metadata
    norm = {k.removeprefix("text_encoder."): v for k, v in load_file(folder / NORM_FILE).items()}
    plain.text_encoder.load_state_dict(norm, strict=False)
    fused = fresh_toy_pipeline()
    quick_lora.fuse(fused)
    base = states(fresh_toy_pipeline())
    assert not torch.allclose(states(ours), base, atol=1e-4)  # the adapter does something
    assert torch.allclose(states(plain), states(ours), atol=1e-6)
    assert torch.allclose(states(fused), states(ours), atol=1e-5)
    assert torch.allclose(images(fused), images(ours), atol=1e-4)


def test_lora_without_the_norm_is_a_plain_diffusers_lora(toy_world, toy_config, circle_images, circle_token,
                                                         fresh_toy_pipeline, tmp_path):
    model, _ = toy_world
    block = toy_config.erasure.lora_ti.model_copy(update={"steps": 3, "train_final_layer_norm": False, "batch_size": 2})
    config = toy_config.erasure.model_copy(update={"method": "lora_ti", "lora_ti": block})
    result = erase(model.pipeline, ErasureRequest([Concept("circle")], images=circle_images,
                                                  learned_token=circle_token), config)
    folder = result.save(tmp_path / "a")
    assert not (folder / NORM_FILE).exists()
    plain, fused = fresh_toy_pipeline(), fresh_toy_pipeline()
    plain.load_lora_weights(str(folder))
    result.fuse(fused)
    assert torch.allclose(states(plain), states(fused), atol=1e-5)


@pytest.mark.parametrize("method,concepts", [
    pytest.param("lora_ti", ("circle",), marks=pytest.mark.slow),  # trains A at the toy config's full settings
    ("te_ascent", ("circle",)), ("closed_form", ("circle", "square"))])
def test_save_load_round_trip_gives_identical_outputs(method, concepts, erasure_results, fresh_toy_pipeline, tmp_path):
    result = erasure_results(method, concepts)
    loaded = load_result(result.save(tmp_path / method))
    assert type(loaded) is type(result) and loaded.changed_tensors() == result.changed_tensors()
    assert loaded.concepts == list(concepts) and loaded.wall_time_s == result.wall_time_s
    a, b = fresh_toy_pipeline(), fresh_toy_pipeline()
    result.fuse(a)
    loaded.fuse(b)
    ta, tb = named_tensors(a), named_tensors(b)
    assert all(torch.equal(ta[n], tb[n]) for n in ta)
    assert torch.equal(images(a), images(b))


def test_every_result_class_is_in_the_kind_registry():
    """RESULT_KINDS is written by hand (no registration on import): a new result class must be added there."""
    import importlib
    import inspect
    import pkgutil

    import components.erasure as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    concrete = {cls for cls in subclasses(ErasureResult) if not inspect.isabstract(cls)}
    assert len(concrete) >= 2 and RESULT_KINDS == {cls.kind: cls for cls in concrete}


def test_tampered_weights_are_refused(erasure_results, tmp_path):
    folder = erasure_results("te_ascent").save(tmp_path / "b")
    tensors = load_file(folder / "delta.safetensors")
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, folder / "delta.safetensors")
    with pytest.raises(ArtefactError, match="sha256 differs"):
        load_result(folder)


def test_wrong_base_is_refused(erasure_results, fresh_toy_pipeline):
    result = erasure_results("closed_form", ("circle", "square"))
    pipe = fresh_toy_pipeline()
    name = result.changed_tensors()[0]
    set_tensor(pipe, name, dict(named_tensors(pipe))[name] * 1.5)
    with pytest.raises(BaseMismatchError, match="differ from the base"):
        result.apply(pipe)


def test_erasing_two_concepts_needs_the_closed_form(toy_world, toy_config, circle_images):
    model, _ = toy_world
    request = ErasureRequest([Concept("circle"), Concept("square")], images=circle_images)
    with pytest.raises(ValueError, match="closed_form"):
        erase(model.pipeline, request, toy_config.erasure.model_copy(update={"method": "te_ascent"}))
