import shutil

import numpy as np
import pytest
import torch

from components.models.loading import ModelLoadError, load_pipeline, resolve_folder, weights_sha256
from components.toyworld.world import PIPELINE_DIR


def _generate(pipe, seed=0):
    g = torch.Generator().manual_seed(seed)
    return pipe(["a red circle", "a blue square"], num_inference_steps=5, guidance_scale=5.0, generator=g,
                output_type="np").images


def test_loads_the_toy_world_as_a_stable_diffusion_pipeline(toy_world):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    model, _ = toy_world
    pipe = model.pipeline
    assert isinstance(pipe, StableDiffusionPipeline)
    assert isinstance(pipe.unet, UNet2DConditionModel) and pipe.unet.config.cross_attention_dim == 64
    assert isinstance(pipe.vae, AutoencoderKL) and isinstance(pipe.text_encoder, CLIPTextModel)
    assert isinstance(pipe.tokenizer, CLIPTokenizer)
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"
    assert model.device == "cpu" and model.dtype == "float32" and len(model.weights_sha256) == 64
    images = _generate(pipe)
    assert images.shape == (2, 32, 32, 3) and np.isfinite(images).all()


def test_save_pretrained_round_trip_is_exact(toy_world, tmp_path):
    model, _ = toy_world
    model.pipeline.save_pretrained(tmp_path / "copy", safe_serialization=True)
    copy = load_pipeline(tmp_path / "copy")
    np.testing.assert_array_equal(_generate(copy.pipeline), _generate(model.pipeline))
    assert not list((tmp_path / "copy").rglob("*.bin")), "weights must be safetensors only"


def test_weights_hash_is_stable_and_content_sensitive(tmp_path):
    copy = tmp_path / "sd"
    shutil.copytree(PIPELINE_DIR, copy)
    first = weights_sha256(copy)
    assert first == weights_sha256(PIPELINE_DIR), "hash must not depend on where the folder lives"
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert weights_sha256(copy) != first


def test_bfloat16_load(tmp_path):
    model = load_pipeline(PIPELINE_DIR, dtype="bfloat16")
    assert model.pipeline.unet.dtype == torch.bfloat16 and model.dtype == "bfloat16"
    assert model.pipeline.text_encoder.dtype == torch.bfloat16


def test_not_a_pipeline_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_pipeline(tmp_path)


def test_hub_id_needs_revision_and_is_offline_by_default():
    with pytest.raises(ModelLoadError, match="pinned revision"):
        resolve_folder("nobody/no-such-model")
    with pytest.raises(ModelLoadError, match="downloads are off"):
        resolve_folder("nobody/no-such-model", revision="0" * 40)


def test_missing_local_path_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder"):
        resolve_folder(tmp_path / "nothing-here")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_pipeline(PIPELINE_DIR, device="cuda")
