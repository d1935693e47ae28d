"""Model configs of the toy world: SD-format components, just very small.

Sizes follow what a feasibility probe found trainable on 2 CPU cores (see BENCHMARKS.md).
"""
from __future__ import annotations

from .tokenizer import MAX_LENGTH

LATENT_CHANNELS = 4
TEXT_HIDDEN = 64
TEXT_LAYERS = 4


def vae_config() -> dict:
    return dict(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64), layers_per_block=1, latent_channels=LATENT_CHANNELS,
        norm_num_groups=16, sample_size=32,
    )


def unet_config(channels: tuple[int, int] = (48, 96)) -> dict:
    return dict(
        sample_size=16, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=channels, layers_per_block=1, cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=8, norm_num_groups=16,
    )


def text_config(vocab_size: int, bos_id: int, eos_id: int, pad_id: int) -> dict:
    return dict(
        vocab_size=vocab_size, hidden_size=TEXT_HIDDEN, intermediate_size=4 * TEXT_HIDDEN,
        num_hidden_layers=TEXT_LAYERS, num_attention_heads=4, max_position_embeddings=MAX_LENGTH,
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id, projection_dim=TEXT_HIDDEN,
    )


def clip_vision_config() -> dict:
    return dict(image_size=32, patch_size=4, hidden_size=64, intermediate_size=256,
                num_hidden_layers=4, num_attention_heads=4, projection_dim=64)


def noise_schedule() -> dict:
    """SD's own schedule. The linear DDPM schedule leaves almost no signal at t=999 on these
    tiny latents and the probe's samples lost colour and layout; scaled_linear fixed it."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon")
