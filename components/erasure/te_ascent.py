"""Method B: few-shot unlearning of the text encoder (Fuchi & Takagi, seed 001, arXiv 2405.07288).

Pure gradient ascent on the denoising loss of a few real images of the concept, conditioned on
one template filled with the concept name ("a photo of a {}" for objects, "a painting in the
style of {}" for styles):  L = -|| U(z_t, t, c(prompt)) - target ||^2.  Only the text encoder
moves; by default every MLP fc1/fc2 plus the last layer's attention ("mlp-final-attn", as in the
paper's `train.py`), picked by index from the end. No retain term, no anchor: the few epochs are
the bound. Adam with the paper's settings (lr 1e-5, betas 0.9/0.98, eps 1e-6, wd 1e-8, batch 2).
"""
from __future__ import annotations

import copy
import time

import torch
from ..domain.progress_lines import progress_bar

from .denoising import encode, frozen, image_latents, noised, per_sample_mse, predict, tokenize, training_scheduler
from .text_encoder_parts import ATTENTION, MLP, last_layers, layer_modules
from .weight_delta import WeightDelta

PAPER_TEMPLATE = {"style": "a painting in the style of {}"}  # every other kind: the object template
OBJECT_TEMPLATE = "a photo of a {}"


def trainable_modules(text_encoder, trainable: str) -> list[str]:
    every = list(range(last_layers(text_encoder, 1)[0] + 1))
    last = last_layers(text_encoder, 1)
    if trainable == "mlp-final-attn":
        return layer_modules(text_encoder, every, MLP) + layer_modules(text_encoder, last, ATTENTION)
    if trainable == "final-attn":
        return layer_modules(text_encoder, last, ATTENTION)
    if trainable == "all":
        return [""]
    raise ValueError(f"unknown trainable set {trainable!r}")


def erase_te_ascent(pipe, request, config, progress: bool = False) -> WeightDelta:
    """config: run_config.Erasure (uses .te_ascent)."""
    params = config.te_ascent
    start = time.perf_counter()
    concept = request.concept
    if not request.images:
        raise ValueError("method te_ascent needs the concept's images; the request has none")
    torch.manual_seed(request.seed)
    gen = torch.Generator().manual_seed(request.seed)
    device = pipe.unet.device

    text_encoder = copy.deepcopy(pipe.text_encoder).float().to(device)
    frozen(text_encoder, pipe.unet, pipe.vae)
    modules = trainable_modules(text_encoder, params.trainable)
    names = []
    for m in modules:
        for pname, p in text_encoder.get_submodule(m).named_parameters():
            if "embeddings" not in pname:
                p.requires_grad_(True)
                names.append(f"{m}.{pname}" if m else pname)
    trainable = [text_encoder.get_parameter(n) for n in names]

    prompt = PAPER_TEMPLATE.get(concept.kind, OBJECT_TEMPLATE).format(concept.name)
    latents = image_latents(pipe, request.images, flips=False)
    ids = tokenize(pipe.tokenizer, [prompt], device)
    scheduler = training_scheduler(pipe)
    optimizer = torch.optim.Adam(trainable, lr=params.learning_rate, betas=tuple(params.betas), eps=params.eps,
                                 weight_decay=params.weight_decay)
    history = []
    step = 0
    bar = progress_bar(range(params.epochs), desc=f"method B (TE ascent) {concept.name}", unit="epoch", enabled=progress)
    for epoch in bar:
        order = torch.randperm(latents.shape[0], generator=gen)
        for batch in order.split(params.batch_size):
            noisy, t, target = noised(scheduler, latents[batch.to(device)], gen)
            states = encode(text_encoder, ids.expand(len(batch), -1))
            denoise = per_sample_mse(predict(pipe.unet, noisy, t, states), target).mean()
            optimizer.zero_grad(set_to_none=True)
            (-denoise).backward()
            optimizer.step()
            history.append({"step": step, "epoch": epoch, "denoise": denoise.item()})
            step += 1
        bar.set_postfix(denoise=f"{denoise.item():.3f}")

    new_values = {f"text_encoder.{n}": text_encoder.get_parameter(n) for n in names}
    return WeightDelta.from_changes(
        pipe, new_values, method="te_ascent", concepts=[concept.name],
        hyperparameters={**params.model_dump(), "seed": request.seed, "prompt": prompt, "optimizer_steps": step},
        wall_time_s=time.perf_counter() - start, history=history)
