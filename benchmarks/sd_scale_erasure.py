"""Erase-time of each method at Stable Diffusion scale, on randomly initialised SD 1.5 / SD 2.1 architectures.

    python -m benchmarks.sd_scale_erasure --arch sd15 [--steps 20] [--dtype float32]

No checkpoint can be downloaded here, so the weights are random: the numbers are speed and memory,
not efficacy. The U-Net, VAE and text encoder have SD's real shapes (SD 1.5: 12-layer 768-wide
encoder, 512 px; SD 2.1: 23-layer 1024-wide encoder, 768 px, v-prediction); the tokenizer is the toy
world's, padded to 77 tokens. Each method runs a short, fixed number of steps; the per-step time is
multiplied out to the configured step counts. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from components.erasure.methods import erase
from components.erasure.request import Concept, ErasureRequest
from components.erasure.textual_inversion import learn_token
from components.run_config import load_run_config

REPO = Path(__file__).resolve().parents[1]
ARCHS = {
    "sd15": dict(hidden=768, layers=12, heads=12, ffn=3072, act="quick_gelu", cross=768, head_dim=8,
                 linear_proj=False, sample=64, prediction="epsilon", config="sd15.yaml"),
    "sd21": dict(hidden=1024, layers=23, heads=16, ffn=4096, act="gelu", cross=1024, head_dim=(5, 10, 20, 20),
                 linear_proj=True, sample=96, prediction="v_prediction", config="sd21.yaml"),
}


def random_pipeline(arch: str, device: str, dtype: torch.dtype):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from components.toyworld.tokenizer import build_tokenizer

    a = ARCHS[arch]
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    tokenizer.model_max_length = 77
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=a["hidden"], intermediate_size=a["ffn"], num_hidden_layers=a["layers"],
        num_attention_heads=a["heads"], max_position_embeddings=77, hidden_act=a["act"],
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(sample_size=a["sample"], cross_attention_dim=a["cross"],
                                attention_head_dim=a["head_dim"], use_linear_projection=a["linear_proj"])
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=a["sample"] * 8)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              prediction_type=a["prediction"], clip_sample=False, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    return pipe.to(device, dtype)


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="sd15")
    parser.add_argument("--steps", type=int, default=20, help="steps actually run for TI and method A")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    cfg = load_run_config(REPO / "configs" / ARCHS[args.arch]["config"])
    pipe = random_pipeline(args.arch, device, dtype)
    pipe.set_progress_bar_config(disable=True)
    images = sorted((REPO / "examples/tickets/erase-circle").glob("*.png"))  # upscaled to the model's size
    retain = ["a red square", "a blue triangle", "a green cross", "a yellow square"]
    concept = Concept("circle")
    out: dict = {"arch": args.arch, "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
                 "dtype": args.dtype, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}

    ti_cfg = cfg.erasure.textual_inversion
    erase(pipe, ErasureRequest([concept]), cfg.erasure.model_copy(update={"method": "closed_form"}))  # warm-up
    token, t = timed(lambda: learn_token(pipe, concept, images, ti_cfg.model_copy(update={"steps": args.steps})))
    out["ti_s_per_step"] = t / args.steps
    out["ti_s_at_config"] = t / args.steps * ti_cfg.steps

    a_cfg = cfg.erasure.lora_ti
    request = ErasureRequest([concept], images=images, retain_prompts=retain, learned_token=token)
    erasure = cfg.erasure.model_copy(update={"method": "lora_ti", "lora_ti": a_cfg.model_copy(update={"steps": args.steps})})
    result, t = timed(lambda: erase(pipe, request, erasure))
    out["a_s_per_step"] = t / args.steps
    out["a_s_at_config"] = t / args.steps * a_cfg.steps
    with tempfile.TemporaryDirectory() as tmp:
        result.save(tmp)
        out["a_artefact_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())

    result, t = timed(lambda: erase(pipe, request, cfg.erasure.model_copy(update={"method": "te_ascent"})))
    out["b_s"] = t
    out["b_steps"] = result.hyperparameters["optimizer_steps"]
    out["b_changed_tensors"] = len(result.changed_tensors())

    for n in (1, 10):
        req = ErasureRequest([Concept(f"concept{i}") for i in range(n)], retain_prompts=retain)
        result, t = timed(lambda: erase(pipe, req, cfg.erasure.model_copy(update={"method": "closed_form"})))
        out[f"c_s_{n}_concepts"] = t
    out["c_changed_tensors"] = len(result.changed_tensors())
    if device == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out))


if __name__ == "__main__":
    main()
