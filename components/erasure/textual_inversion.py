"""Textual inversion: learn one new token embedding that makes the model draw what the images show.

Standard TI (diffusers `examples/textual_inversion`): a placeholder token is added, initialised
from a word, and only its embedding row trains on the denoising loss of the images under
templates such as "a photo of a <concept>". The saved file is diffusers' learned-embeddings
format ({token: (1, dim)} in safetensors), which `pipe.load_textual_inversion` accepts.
Training runs on copies of the tokenizer and text encoder: the pipeline is not changed.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from ..domain.progress_lines import progress_bar
from ..models.loading import pipeline_with

from .denoising import encode, frozen, image_latents, noised, per_sample_mse, pick, predict, tokenize, training_scheduler
from .concept import Concept
from .diverged import TrainingDiverged
from ..domain.hashing import file_sha256
from .result import ArtefactError
from ..domain.prompt_templates import fill, templates_for

EMBEDDINGS_FILE = "learned_embeds.safetensors"
TOKEN_MANIFEST = "lethe_token.json"


@dataclass
class LearnedToken:
    token: str  # the placeholder, e.g. "<concept>"
    embedding: torch.Tensor  # (1, hidden) on the cpu
    concept: str
    hyperparameters: dict
    wall_time_s: float
    history: list[dict] = field(default_factory=list)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({self.token: self.embedding.contiguous()}, folder / EMBEDDINGS_FILE, metadata={"format": "pt"})
        manifest = {"token": self.token, "concept": self.concept, "hyperparameters": self.hyperparameters,
                    "wall_time_s": self.wall_time_s, "history": self.history,
                    "files": {EMBEDDINGS_FILE: file_sha256(folder / EMBEDDINGS_FILE)}}
        (folder / TOKEN_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "LearnedToken":
        folder = Path(folder)
        try:
            manifest = json.loads((folder / TOKEN_MANIFEST).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ArtefactError(f"{folder / TOKEN_MANIFEST}: cannot read ({err})") from err
        if file_sha256(folder / EMBEDDINGS_FILE) != manifest["files"][EMBEDDINGS_FILE]:
            raise ArtefactError(f"{folder / EMBEDDINGS_FILE}: sha256 differs from {TOKEN_MANIFEST}")
        embedding = load_file(folder / EMBEDDINGS_FILE)[manifest["token"]]
        return cls(token=manifest["token"], embedding=embedding, concept=manifest["concept"],
                   hyperparameters=manifest["hyperparameters"], wall_time_s=manifest["wall_time_s"],
                   history=manifest["history"])


def text_encoder_with_token(pipe, token: str, init: torch.Tensor | str | None):
    """Copies of the pipeline's tokenizer and text encoder (fp32) with `token` added.

    `init` is the new row: a tensor, a word whose embedding it starts from, or None (mean embedding)."""
    tokenizer = copy.deepcopy(pipe.tokenizer)
    text_encoder = copy.deepcopy(pipe.text_encoder).float()
    if tokenizer.add_tokens(token) != 1:
        raise ValueError(f"token {token!r} is already in the tokenizer's vocabulary; pick another placeholder")
    token_id = tokenizer.convert_tokens_to_ids(token)
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # the row is set below
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        row = init.reshape(-1) if isinstance(init, torch.Tensor) else initial_row(tokenizer, table[:token_id], init)
        table[token_id] = row.to(table)
    return tokenizer, text_encoder, token_id


def initial_row(tokenizer, vocabulary_rows: torch.Tensor, init_word: str | None) -> torch.Tensor:
    """A new token's starting embedding: the mean of `init_word`'s rows, or of the whole vocabulary's (None)."""
    if not init_word:
        return vocabulary_rows.mean(0)
    ids = tokenizer(init_word, add_special_tokens=False).input_ids
    if not ids:
        raise ValueError(f"init word {init_word!r} tokenizes to nothing")
    return vocabulary_rows[ids].mean(0)


def prompt_templates(params, kind: str) -> list[str]:
    """TI's prompts ('{}' for the placeholder): the config's, else the concept kind's."""
    return list(params.templates or templates_for(kind))


def learn_token(pipe, concept: Concept, images: list[Path], params, seed: int = 0, templates=None,
                progress: bool = False) -> LearnedToken:
    """Learn `params.placeholder` for `concept` from `images` (params: run_config.TextualInversionParams)."""
    start = time.perf_counter()
    if not images:
        raise ValueError("textual inversion needs the concept's images; the request has none")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = pipe.unet.device
    templates = list(templates or prompt_templates(params, concept.kind))
    tokenizer, text_encoder, token_id = text_encoder_with_token(pipe, params.placeholder, params.init_word)
    text_encoder.to(device)
    frozen(text_encoder, pipe.unet, pipe.vae)
    embeddings = text_encoder.get_input_embeddings()
    row = torch.nn.Parameter(embeddings.weight[token_id].detach().clone())
    # Only the new row trains: the table stays frozen and the row is swapped into its lookups. Adam over the
    # whole table (diffusers' example) moves the same row by the same steps (the other rows' moments stay 0)
    # but pays a dense gradient, an optimiser update and a restore of every row each step (49k x 1024 at SD).
    swap = embeddings.register_forward_hook(
        lambda module, args, out: torch.where((args[0] == token_id).unsqueeze(-1), row.to(out.dtype), out))

    latents = image_latents(pipe, images)
    prompt_ids = tokenize(tokenizer, fill(templates, params.placeholder), device)
    scheduler = training_scheduler(pipe)
    optimizer = torch.optim.AdamW([row], lr=params.learning_rate, weight_decay=0.0)
    history = []
    bar = progress_bar(range(params.steps), desc=f"textual inversion {params.placeholder}", unit="step", enabled=progress)
    for step in bar:
        idx = pick(latents.shape[0], params.batch_size, gen).to(device)
        ids = prompt_ids[pick(prompt_ids.shape[0], params.batch_size, gen).to(device)]
        noisy, t, target = noised(scheduler, latents[idx], gen, params.timesteps)
        loss = per_sample_mse(predict(pipe.unet, noisy, t, encode(text_encoder, ids)), target).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"step": step, "loss": loss.item()})
        bar.set_postfix(loss=f"{loss.item():.4f}")
    swap.remove()
    embedding = row.detach().to("cpu", torch.float32).reshape(1, -1).clone()
    if not torch.isfinite(embedding).all():  # a token that blew up must not become anyone's attack control
        raise TrainingDiverged("textual inversion diverged: the learned embedding is not finite")
    return LearnedToken(token=params.placeholder, embedding=embedding, concept=concept.name,
                        hyperparameters={**params.model_dump(), "templates": templates, "seed": seed,
                                         "images": {Path(p).name: file_sha256(Path(p)) for p in images}},
                        wall_time_s=time.perf_counter() - start, history=history)


def pipeline_with_token(pipe, token: LearnedToken):
    """A pipeline that understands `token.token`: copies of the tokenizer and text encoder (in the
    pipeline's dtype) with the learned row; every other component is shared, `pipe` is unchanged."""
    tokenizer, text_encoder, _ = text_encoder_with_token(pipe, token.token, token.embedding)
    text_encoder.to(pipe.text_encoder.device, pipe.text_encoder.dtype)
    return pipeline_with(pipe, tokenizer=tokenizer, text_encoder=text_encoder)
