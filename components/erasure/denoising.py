"""The pieces every image-based method shares: images -> latents, prompts -> encoder states, the denoising loss.

SD's cross-attention reads the text encoder's last hidden states (not the pooled projection), so
that is what `encode` returns.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def image_size(pipe) -> int:
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """RGB images, shorter side resized to `size`, centre-cropped, scaled to [-1, 1]: (N, 3, size, size)."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            scale = size / min(im.size)
            im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))), Image.BICUBIC)
            left, top = (im.width - size) // 2, (im.height - size) // 2
            im = im.crop((left, top, left + size, top + size))
            out.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1))
    return torch.stack(out)


@torch.no_grad()
def image_latents(pipe, paths: list[Path], flips: bool = True) -> torch.Tensor:
    """VAE posterior means of the images (and their mirror images: the usual few-shot augmentation).

    The mean, not a sample, keeps the methods deterministic; the toy world was trained on means too."""
    pixels = load_images(paths, image_size(pipe))
    if flips:
        pixels = torch.cat([pixels, pixels.flip(-1)])
    vae = pipe.vae
    pixels = pixels.to(device=vae.device, dtype=vae.dtype)
    return (vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor).float()


def tokenize(tokenizer, prompts: list[str], device) -> torch.Tensor:
    return tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids.to(device)


def encode(text_encoder, input_ids: torch.Tensor) -> torch.Tensor:
    """The encoder hidden states the U-Net's cross-attention reads."""
    return text_encoder(input_ids)[0]


def training_scheduler(pipe):
    """A DDPM scheduler with the pipeline's noise schedule (its own scheduler may be a sampler)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)


def noised(scheduler, latents: torch.Tensor, generator: torch.Generator,
           timesteps: tuple[float, float] = (0.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noised latents at uniform random timesteps (within `timesteps`, a share of the schedule), the
    timesteps, and the U-Net's training target.

    Randomness is drawn on the CPU from `generator` so a seed means the same thing on any device."""
    n = latents.shape[0]
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    total = scheduler.config.num_train_timesteps
    low, high = round(timesteps[0] * total), max(round(timesteps[1] * total), round(timesteps[0] * total) + 1)
    t = torch.randint(low, high, (n,), generator=generator).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, t)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, t)
    else:
        target = noise
    return noisy, t, target


def predict(unet, noisy: torch.Tensor, t: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    return unet(noisy.to(unet.dtype), t, states.to(unet.dtype)).sample.float()


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target, reduction="none").flatten(1).mean(1)


def pick(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k indices from range(n): a fresh permutation, repeated if k > n."""
    reps = -(-k // n)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[:k]


def frozen(*modules) -> None:
    """No gradients for these modules (the pipeline's own models included: their weights are only read)."""
    for m in modules:
        m.requires_grad_(False)
