"""Seeded, batched image generation for evaluation: the same seeds for the original and the erased model.

Every image has its own seed, derived from the run seed, the prompt text and the image's index, and
its starting noise is drawn on the CPU. So image i of a prompt starts from the same noise whatever
the batch size, the order of prompts or the device: before/after pairs differ only by the erasure.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import torch
from ..domain.progress_lines import progress_bar
from ..models.loading import pipeline_with


def image_seed(seed: int, prompt: str, index: int) -> int:
    return (seed * 1_000_003 + zlib.crc32(prompt.encode("utf-8")) * 1009 + index) % (2**63 - 1)


def sampling_kwargs(sampling) -> dict:
    """run_config.Sampling -> keyword arguments of a diffusers pipeline call."""
    kwargs = {"num_inference_steps": sampling.steps, "guidance_scale": sampling.guidance_scale}
    if sampling.height:
        kwargs["height"] = sampling.height
    if sampling.width:
        kwargs["width"] = sampling.width
    return kwargs


SCHEDULERS = {"ddim": "DDIMScheduler", "dpm_solver_pp": "DPMSolverMultistepScheduler"}


def sampling_pipeline(pipe, sampling):
    """`pipe`, or a copy sharing its modules with the sampler `sampling.scheduler` names (built from the
    model's own scheduler config, so the noise schedule is the one it was trained with)."""
    name = getattr(sampling, "scheduler", None)
    if name is None or type(pipe.scheduler).__name__ == SCHEDULERS[name]:
        return pipe
    import diffusers

    options = {"algorithm_type": "dpmsolver++", "solver_order": 2} if name == "dpm_solver_pp" else {}
    return pipeline_with(pipe, scheduler=getattr(diffusers, SCHEDULERS[name]).from_config(pipe.scheduler.config, **options))


def count_for(images_per_prompt: int | Mapping[str, int], prompt: str) -> int:
    return images_per_prompt[prompt] if isinstance(images_per_prompt, Mapping) else images_per_prompt


@torch.no_grad()
def generate(pipe, prompts: list[str], images_per_prompt: int | Mapping[str, int], sampling, seed: int = 0,
             batch_size: int = 16, progress: bool = False, desc: str = "generating",
             start: int | Mapping[str, int] = 0) -> dict[str, np.ndarray]:
    """prompt -> uint8 images (n, H, W, 3), on the pipeline's own device and dtype; n: images_per_prompt, or
    its value for the prompt when it is a mapping (image i of a prompt is the same whatever n is). With `start`
    (a count, or one per prompt), images start..n-1 only: the rest of a prompt already drawn in part."""
    jobs = [(p, i) for p in dict.fromkeys(prompts)
            for i in range(count_for(start, p), count_for(images_per_prompt, p))]
    out: dict[str, list[np.ndarray]] = {p: [] for p in dict.fromkeys(prompts)}
    kwargs = sampling_kwargs(sampling)
    pipe = sampling_pipeline(pipe, sampling)
    with progress_bar(total=len(jobs), desc=desc, unit="img", enabled=progress) as bar:
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start:start + batch_size]
            generators = [torch.Generator("cpu").manual_seed(image_seed(seed, p, i)) for p, i in batch]
            images = pipe([p for p, _ in batch], generator=generators, output_type="np", **kwargs).images
            for (prompt, _), image in zip(batch, images):
                out[prompt].append((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
            bar.update(len(batch))
    return {p: np.stack(images) for p, images in out.items()}
