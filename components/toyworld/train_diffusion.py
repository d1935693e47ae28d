"""Train the toy Stable Diffusion: the VAE first, then the U-Net and text encoder jointly.

Recipe from the feasibility probe (BENCHMARKS.md): SD's scaled_linear noise schedule, training on
the VAE posterior MEAN, epsilon prediction, EMA weights, 10% empty captions for guidance.
Added here: min-SNR loss weighting, which shifts effort to the noisy steps that decide colour
and layout.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .architectures import noise_schedule, text_config, unet_config, vae_config
from .detector import to_tensor
from .shapes import sample_shapes, training_caption


def train_vae(images: torch.Tensor, steps: int, batch_size: int = 64, seed: int = 0,
              log: Callable[[str], None] = print):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(**vae_config())
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.05)
    vae.train()
    for step in range(1, steps + 1):
        x = images[torch.randint(0, len(images), (batch_size,), generator=gen)] * 2 - 1
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        mse = F.mse_loss(recon, x)
        loss = mse + F.l1_loss(recon, x) * 0.5 + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            log(f"vae step {step}/{steps} mse {mse.item():.5f}")
    return vae.eval()


@torch.no_grad()
def encode_means(vae, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([vae.encode(images[i:i + batch_size] * 2 - 1).latent_dist.mean
                      for i in range(0, len(images), batch_size)])


class _CaptionTokens:
    """Caches token ids per caption: the caption set is small and tokenizing it each step is waste."""

    def __init__(self, tokenizer):
        self.tokenizer, self.cache = tokenizer, {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = [c for c in set(captions) if c not in self.cache]
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids
            self.cache.update(zip(missing, ids))
        return torch.stack([self.cache[c] for c in captions])


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


def build_denoiser(tokenizer):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(**unet_config())
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)))
    return unet, text_encoder


def train_denoiser(tokenizer, latents: torch.Tensor, shapes: list[str], colours: list[str], steps: int,
                   batch_size: int = 32, lr: float = 6e-4, seed: int = 0, ema_decay: float = 0.999,
                   min_snr_gamma: float = 5.0, log: Callable[[str], None] = print,
                   state_path=None, checkpoint_every: int = 500,
                   on_checkpoint: Callable[[int, torch.nn.Module, torch.nn.Module], None] | None = None):
    """Joint U-Net + text-encoder training on (scaled) latents; returns the EMA models.

    The learning rate is constant after warm-up (EMA does the averaging), and the full state,
    random generators included, is saved to `state_path` every `checkpoint_every` steps: a run
    resumed from it, or extended to more steps, gives the same weights as one uninterrupted run.
    """
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    unet, text_encoder = build_denoiser(tokenizer)
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    warmup = 200
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    start = 0
    if state_path is not None and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        for module, key in ((unet, "unet"), (text_encoder, "text"), (ema_unet, "ema_unet"), (ema_text, "ema_text")):
            module.load_state_dict(state[key])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        rng.bit_generator.state = state["rng"]
        start = state["step"]
        log(f"denoiser resumed at step {start}")

    def save_state(step: int) -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"unet": unet.state_dict(), "text": text_encoder.state_dict(), "ema_unet": ema_unet.state_dict(),
                    "ema_text": ema_text.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "rng": rng.bit_generator.state, "step": step}, tmp)
        tmp.replace(state_path)

    scheduler = DDPMScheduler(**noise_schedule())
    alphas = scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    tokens = _CaptionTokens(tokenizer)
    unet.train()
    text_encoder.train()
    for step in range(start + 1, steps + 1):
        idx = torch.randint(0, len(latents), (batch_size,), generator=gen)
        z0 = latents[idx]
        captions = [training_caption(colours[i], shapes[i], rng) for i in idx.tolist()]
        ids = tokens(captions)
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=gen)
        zt = scheduler.add_noise(z0, noise, t)
        hidden = text_encoder(ids).last_hidden_state
        pred = unet(zt, t, encoder_hidden_states=hidden).sample
        weight = torch.clamp(snr[t], max=min_snr_gamma) / snr[t]
        loss = (weight * F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        _ema_update(ema_unet, unet, decay)
        _ema_update(ema_text, text_encoder, decay)
        if step % 100 == 0 or step == steps:
            log(f"denoiser step {step}/{steps} loss {loss.item():.4f}")
        if state_path is not None and (step % checkpoint_every == 0 or step == steps):
            save_state(step)
            if on_checkpoint and step != steps:
                on_checkpoint(step, ema_unet, ema_text)
    return ema_unet, ema_text


def diffusion_dataset(n: int, seed: int) -> tuple[torch.Tensor, list[str], list[str]]:
    images, shapes, colours = sample_shapes(n, np.random.default_rng(seed))
    return to_tensor(images), shapes, colours
