"""Stable Diffusion 1.5 and 2.1 pipelines with random weights, built from their published configs.

No checkpoint can be downloaded here, and speed and memory do not depend on weight values, so the
benchmarks time Lethe's code on the real shapes:

* SD 1.5: U-Net of `runwayml/stable-diffusion-v1-5` (320/640/1280/1280, 8 heads, cross-attention 768,
  64x64 latents = 512 px), text encoder CLIP ViT-L/14 (12 layers, 768 wide, quick_gelu), epsilon.
* SD 2.1: U-Net of `stabilityai/stable-diffusion-2-1` (head dims 5/10/20/20, linear projections,
  cross-attention 1024, 96x96 latents = 768 px), text encoder OpenCLIP ViT-H/14 as SD 2 ships it
  (23 of its 24 layers, 1024 wide, gelu), v-prediction.
* Both: the SD VAE (128/256/512/512, 2 layers per block, 4 latent channels, scaling 0.18215).
* tiny: the toy world's component sizes, for tests of the benchmark itself.

The tokenizer is the toy world's BPE tokenizer padded to the model's context length (77 for SD): the
prompts have SD's sequence length, which is what costs time, though not CLIP's vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              scaling_factor=0.18215)
SD_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
CLIP_VOCAB = 49408


@dataclass(frozen=True)
class Architecture:
    name: str
    config_file: str  # the run config under configs/ whose step counts and sampling the suite uses
    resolution: int  # pixels
    text: dict  # CLIPTextConfig fields
    unet: dict  # UNet2DConditionModel fields (sample_size is set from the resolution)
    vae: dict  # AutoencoderKL fields
    prediction_type: str
    context_length: int = 77


SD15 = Architecture(
    name="sd15", config_file="sd15.yaml", resolution=512,
    text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              hidden_act="quick_gelu", projection_dim=768),
    unet=dict(cross_attention_dim=768, attention_head_dim=8, use_linear_projection=False),
    vae=SD_VAE, prediction_type="epsilon")

SD21 = Architecture(
    name="sd21", config_file="sd21.yaml", resolution=768,
    text=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
              hidden_act="gelu", projection_dim=1024),
    unet=dict(cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True),
    vae=SD_VAE, prediction_type="v_prediction")


def _tiny() -> Architecture:
    from components.toyworld import architectures as toy

    text = {k: v for k, v in toy.text_config(0, 0, 0, 0).items()
            if k not in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "max_position_embeddings")}
    unet = {k: v for k, v in toy.unet_config().items() if k != "sample_size"}
    vae = {k: v for k, v in toy.vae_config().items() if k != "sample_size"}
    return Architecture(name="tiny", config_file="toy.yaml", resolution=32, text=text, unet=unet, vae=vae,
                        prediction_type="epsilon", context_length=16)


ARCHITECTURES = {"sd15": SD15, "sd21": SD21, "tiny": _tiny()}


def random_pipeline(arch: Architecture, resolution: int | None = None, seed: int = 0):
    """A StableDiffusionPipeline of `arch`'s shapes with random weights, fp32 on the CPU.

    `resolution` overrides the architecture's default (SD 2.1 also runs at 512 px)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from components.toyworld.tokenizer import build_tokenizer

    resolution = resolution or arch.resolution
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    tokenizer.model_max_length = arch.context_length
    vocab = CLIP_VOCAB if arch.context_length == 77 else len(tokenizer)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab, max_position_embeddings=arch.context_length, **arch.text,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    latent_side = resolution // 2 ** (len(arch.vae["block_out_channels"]) - 1)  # the VAE's downsampling
    unet = UNet2DConditionModel(sample_size=latent_side, **arch.unet)
    vae = AutoencoderKL(sample_size=resolution, **arch.vae)
    scheduler = DDIMScheduler(**SD_SCHEDULE, prediction_type=arch.prediction_type, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
