"""CLIP image and text features from a local CLIP folder (the toy world's, or e.g. openai/clip-vit-large-patch14).

One model serves the CLIP score (image-text agreement), the zero-shot detector and the feature
space of KID/FID, so nothing needs an Inception download.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.loading import ModelLoadError


@dataclass
class ClipFeatures:
    model: object  # transformers.CLIPModel
    processor: object  # transformers.CLIPProcessor
    source: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def image_features(self, images: np.ndarray, batch_size: int = 64) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> unit-norm float32 (N, D) on the CPU."""
        feats = []
        for start in range(0, len(images), batch_size):
            pil = [Image.fromarray(im) for im in images[start:start + batch_size]]
            pixels = self.processor(images=pil, return_tensors="pt").pixel_values
            dtype = next(self.model.parameters()).dtype
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, dtype))
            feats.append(_unit(_pooled(out)).float().cpu())
        return torch.cat(feats)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        """texts -> unit-norm float32 (len(texts), D) on the CPU."""
        tokenizer = self.processor.tokenizer
        tokens = tokenizer(list(texts), padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        return _unit(_pooled(out)).float().cpu()

    def clip_scores(self, images: np.ndarray, text: str) -> np.ndarray:
        """Per image: CLIPScore as torchmetrics reports it, 100 * max(cos(image, text), 0)."""
        cos = self.image_features(images) @ self.text_features([text])[0]
        return (100.0 * cos.clamp(min=0)).numpy()

    def zero_shot(self, images: np.ndarray, candidates: list[str]) -> np.ndarray:
        """Per image: the index of the candidate text CLIP finds closest."""
        return (self.image_features(images) @ self.text_features(candidates).T).argmax(1).numpy()


def _pooled(out) -> torch.Tensor:
    # transformers 5 may return a model output object instead of the bare projected tensor
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def load_clip(folder: str | Path | None, device: str = "cpu", dtype: torch.dtype = torch.float32) -> ClipFeatures:
    from transformers import CLIPModel, CLIPProcessor

    if folder is None:
        raise ModelLoadError("evaluation.clip_model is not set: the CLIP score, KID/FID and the zero-shot detector "
                             "need a local CLIP folder (e.g. a save of openai/clip-vit-large-patch14)")
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder}: not a CLIP model folder (no config.json)")
    try:
        model = CLIPModel.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device).eval()
        processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load a CLIP model from {folder}: {err}") from err
    return ClipFeatures(model, processor, str(folder))
