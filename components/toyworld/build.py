"""`lethe world build`: regenerate the whole toy world from fixed seeds.

Stages (each cached in a work folder, so an interrupted build resumes where it stopped):
detector -> CLIP -> VAE -> latents -> U-Net + text encoder -> assemble -> measure.
"""
from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .world import ASSETS_DIR


@dataclass(frozen=True)
class BuildPlan:
    seed: int = 0
    detector_images: int = 32000
    detector_steps: int = 1500
    clip_images: int = 30000
    clip_steps: int = 1500
    vae_images: int = 30000
    vae_steps: int = 1200
    denoiser_images: int = 40000
    denoiser_steps: int = 4000
    fidelity_images_per_caption: int = 32
    held_out_images: int = 2000  # rendered images for the detector / CLIP accuracy check
    preview_every: int = 1000  # denoiser steps between quick fidelity previews in the log (0: none)

    def scaled(self, factor: float) -> "BuildPlan":
        """A smaller plan with the same stages (for smoke tests of the build itself)."""
        def s(n: int, lo: int) -> int:
            return max(lo, int(n * factor))
        return BuildPlan(self.seed, s(self.detector_images, 64), s(self.detector_steps, 2), s(self.clip_images, 64),
                         s(self.clip_steps, 2), s(self.vae_images, 64), s(self.vae_steps, 2),
                         s(self.denoiser_images, 64), s(self.denoiser_steps, 2), s(self.fidelity_images_per_caption, 1),
                         s(self.held_out_images, 16), preview_every=0)


def build_pipeline(vae, text_encoder, tokenizer, unet):
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from .architectures import noise_schedule

    scheduler = DDIMScheduler(**noise_schedule(), clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_world(out_dir: Path = ASSETS_DIR, work_dir: Path | None = None, plan: BuildPlan = BuildPlan(),
                log: Callable[[str], None] = print) -> dict:
    from diffusers import AutoencoderKL

    from .detector import ConceptDetector
    from .fidelity import measure_fidelity
    from .tokenizer import build_tokenizer
    from .train_clip import build_processor, train_clip
    from .train_detector import train_detector
    from .train_diffusion import diffusion_dataset, encode_means, train_denoiser, train_vae

    out_dir, work = Path(out_dir), Path(work_dir or Path(out_dir).parent / ".toyworld-build")
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = json.loads((work / "timings.json").read_text()) if (work / "timings.json").exists() else {}

    def stage(name: str, done: Path, fn: Callable[[], None]) -> None:
        if done.exists():
            log(f"[{name}] cached in {done}")
            return
        log(f"[{name}] training")
        t0 = time.perf_counter()
        fn()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        (work / "timings.json").write_text(json.dumps(timings, indent=2))

    torch.manual_seed(plan.seed)
    tokenizer = build_tokenizer()

    stage("detector", work / "detector" / "config.json",
          lambda: train_detector(plan.detector_steps, plan.detector_images, seed=plan.seed,
                                 log=log).save_pretrained(work / "detector"))
    detector = ConceptDetector.from_pretrained(work / "detector")

    def clip_stage() -> None:
        train_clip(tokenizer, plan.clip_steps, plan.clip_images, seed=plan.seed, log=log).save_pretrained(work / "clip")
        build_processor(tokenizer).save_pretrained(work / "clip")
    stage("clip", work / "clip" / "processor_config.json", clip_stage)

    def vae_stage() -> None:
        images, _, _ = diffusion_dataset(plan.vae_images, plan.seed + 1)
        vae = train_vae(images, plan.vae_steps, seed=plan.seed, log=log)
        vae.save_pretrained(work / "vae")
    stage("vae", work / "vae" / "config.json", vae_stage)
    vae = AutoencoderKL.from_pretrained(work / "vae").eval()

    def latents_stage() -> None:
        images, shapes, colours = diffusion_dataset(plan.denoiser_images, plan.seed + 2)
        means = encode_means(vae, images)
        # SD convention: latents are scaled to unit variance; the factor travels in the VAE config.
        scaling = float(1.0 / means.std())
        torch.save({"latents": means * scaling, "shapes": shapes, "colours": colours, "scaling": scaling},
                   work / "latents.pt")
    stage("latents", work / "latents.pt", latents_stage)
    data = torch.load(work / "latents.pt", weights_only=False)
    vae.register_to_config(scaling_factor=data["scaling"])

    def preview(step: int, unet, text_encoder) -> None:
        pipe = build_pipeline(vae, text_encoder, tokenizer, unet)
        f = measure_fidelity(pipe, detector, images_per_caption=2)
        log(f"denoiser preview at step {step}: shape {f.shape_accuracy:.2f} colour {f.colour_accuracy:.2f}")

    def denoiser_stage() -> None:
        unet, text_encoder = train_denoiser(tokenizer, data["latents"], data["shapes"], data["colours"],
                                            plan.denoiser_steps, seed=plan.seed, log=log,
                                            state_path=work / "denoiser_state.pt",
                                            on_checkpoint=preview if plan.preview_every else None,
                                            checkpoint_every=plan.preview_every or plan.denoiser_steps)
        build_pipeline(vae, text_encoder, tokenizer, unet).save_pretrained(work / "sd", safe_serialization=True)
    stage(f"denoiser-{plan.denoiser_steps}", work / f"sd-{plan.denoiser_steps}.done", lambda: (
        denoiser_stage(), (work / f"sd-{plan.denoiser_steps}.done").touch()))

    log("[assemble] writing the world to " + str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("sd", "clip", "detector"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
        shutil.copytree(work / name, out_dir / name)
    manifest = measure_world(out_dir, plan.fidelity_images_per_caption, plan.held_out_images, log=log)
    manifest.update(plan=asdict(plan), training_seconds={k: round(v, 1) for k, v in timings.items()},
                    built_with={"torch": torch.__version__, "python": platform.python_version(),
                                "threads": torch.get_num_threads(), "machine": platform.machine()})
    (out_dir / "world.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def measure_world(world_dir: Path, images_per_caption: int, held_out: int = 2000,
                  log: Callable[[str], None] = print) -> dict:
    """The world's quality bar: prompt fidelity, detector and CLIP accuracy on held-out images."""
    from transformers import CLIPModel, CLIPProcessor

    from ..models.loading import load_pipeline
    from .detector import ConceptDetector
    from .fidelity import measure_fidelity
    from .train_clip import clip_zero_shot_accuracy
    from .train_detector import detector_accuracy

    detector = ConceptDetector.from_pretrained(world_dir / "detector")
    log("[measure] detector on held-out rendered images")
    det = detector_accuracy(detector, n=held_out)
    log("[measure] CLIP zero-shot on held-out rendered images")
    clip = CLIPModel.from_pretrained(world_dir / "clip").eval()
    clip_acc = clip_zero_shot_accuracy(clip, CLIPProcessor.from_pretrained(world_dir / "clip"), n=held_out // 2)
    log(f"[measure] prompt fidelity, {images_per_caption} images per caption")
    t0 = time.perf_counter()
    fidelity = measure_fidelity(load_pipeline(world_dir / "sd").pipeline, detector, images_per_caption)
    seconds = time.perf_counter() - t0
    result = {"fidelity": fidelity.as_dict(), "detector": det, "clip_zero_shot_accuracy": clip_acc,
              "held_out_images": held_out,
              "fidelity_images_per_caption": images_per_caption, "fidelity_seconds": round(seconds, 1)}
    log(json.dumps({k: v for k, v in result.items() if k != "fidelity"} | {
        "shape_accuracy": fidelity.shape_accuracy, "colour_accuracy": fidelity.colour_accuracy,
        "worst_caption": fidelity.worst_caption}))
    return result
