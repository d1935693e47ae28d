"""Train the toy CLIPModel contrastively on rendered images and their captions.

Many images in a batch share a caption, so the contrastive target is every caption that truly
describes the image (soft multi-positive targets), not just the diagonal.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .architectures import clip_vision_config, text_config
from .augment import degrade
from .detector import to_tensor
from .shapes import COLOUR_NAMES, SHAPES, all_captions, sample_shapes

# OpenAI CLIP's normalisation, so the saved processor behaves like the real one.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# (template, uses colour, uses shape)
_TEMPLATES = (("a {c} {s}", True, True), ("a photo of a {c} {s}", True, True), ("a {s}", False, True),
              ("a photo of a {s}", False, True), ("a {c} shape", True, False))


def caption_bank() -> tuple[list[str], list[tuple[str | None, str | None]]]:
    texts, labels = [], []
    for tpl, uses_c, uses_s in _TEMPLATES:
        for c in (COLOUR_NAMES if uses_c else (None,)):
            for s in (SHAPES if uses_s else (None,)):
                texts.append(tpl.format(c=c, s=s))
                labels.append((c, s))
    return texts, labels


def build_clip(tokenizer):
    from transformers import CLIPConfig, CLIPModel

    tc = text_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    config = CLIPConfig(text_config=tc, vision_config=clip_vision_config(), projection_dim=64)
    return CLIPModel(config)


def build_processor(tokenizer):
    from transformers import CLIPImageProcessor, CLIPProcessor

    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                         image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN)[None, :, None, None]
    std = torch.tensor(CLIP_STD)[None, :, None, None]
    return (x - mean) / std


def train_clip(tokenizer, steps: int = 2000, n_images: int = 30000, batch_size: int = 128, seed: int = 0,
               log: Callable[[str], None] = print):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_clip(tokenizer)
    texts, labels = caption_bank()
    tokens = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    images_np, shapes, colours = sample_shapes(n_images, rng)
    images = to_tensor(images_np)
    img_labels = list(zip(colours, shapes))
    # compat[i, j]: caption j truly describes image i.
    compat = torch.tensor([[(c is None or c == ic) and (s is None or s == is_) for c, s in labels]
                           for ic, is_ in img_labels], dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    model.train()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(images), (batch_size,), generator=gen)
        x = normalise(degrade(images[idx], gen))
        out = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, pixel_values=x)
        logits = out.logits_per_image  # (batch, n_texts)
        target = compat[idx]
        loss_i = -(F.log_softmax(logits, 1) * target / target.sum(1, keepdim=True)).sum(1).mean()
        col = target.sum(0) > 0
        t_t = target[:, col].T
        loss_t = -(F.log_softmax(logits[:, col].T, 1) * t_t / t_t.sum(1, keepdim=True)).sum(1).mean()
        loss = (loss_i + loss_t) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            log(f"clip step {step}/{steps} loss {loss.item():.4f}")
    return model.eval()


@torch.no_grad()
def clip_zero_shot_accuracy(model, processor, n: int = 800, seed: int = 54321) -> float:
    """Zero-shot accuracy over the 16 measured captions on held-out rendered images,
    going through the saved processor exactly as one would with openai/clip-vit-large-patch14."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images, shapes, colours = sample_shapes(n, rng)
    captions = all_captions()
    truth = [captions.index(f"a {c} {s}") for c, s in zip(colours, shapes)]
    inputs = processor(text=captions, images=[Image.fromarray(im) for im in images], return_tensors="pt",
                       padding="max_length", max_length=processor.tokenizer.model_max_length)
    logits = model(**inputs).logits_per_image
    return float((logits.argmax(1) == torch.tensor(truth)).float().mean())
