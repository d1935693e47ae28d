"""Method A: few-shot concept unlearning with LoRA + textual inversion (seed 000, arXiv 2505.12395).

LoRA on q/k/v/out and fc1/fc2 of the text encoder's last N layers, plus its final layer norm,
trained on

    L = w_f * ( -min(L_den(images | name prompts), b) - min(L_den(images | <c*> prompts), b) )
      + w_r * || U(z_t, t, c_lora(p_r)) - U(z_t, t, c_orig(p_r)) ||^2

The first term is bounded gradient ascent: once an image's denoising loss passes the bound `b` its
gradient stops, so the encoder cannot run away. With `forget_objective: anchored` (our extension, ESD's
target moved into the text encoder) it is instead

    w_f * || U(z_t, t, c_lora(p)) - [e_a - g (e_p - e_a)] ||^2,   e_a = U(z_t, t, c_orig(anchor(p))), e_p = U(z_t, t, c_orig(p))

for name and <c*> prompts p, anchor(p) = p without the concept's words: the prediction for "a red circle"
becomes that of "a circle" pushed away from red, so the concept goes and the rest of the prompt stays. The learned token <c*> makes the erasure cover
what the images show, not only the literal name. The retain term keeps the U-Net's predictions
for retain prompts (and the empty prompt, which classifier-free guidance uses) where they were.
The paper's exact weighting is not public; this is the reading in ../shared/METHODS.md.
"""
from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from .denoising import encode, frozen, image_latents, noised, per_sample_mse, pick, predict, tokenize, training_scheduler
from .lora_adapter import LoraAdapter
from .templates import fill, templates_for
from .text_encoder_parts import ATTENTION, MLP, final_norm, last_layers, layer_modules
from .textual_inversion import learn_token, text_encoder_with_token
from ..prompt_terms import without


def erase_lora_ti(pipe, request, config, progress: bool = False) -> LoraAdapter:
    """config: run_config.Erasure (uses .lora_ti and .textual_inversion)."""
    params = config.lora_ti
    start = time.perf_counter()
    concept = request.concept
    token = request.learned_token or learn_token(pipe, concept, request.images, config.textual_inversion,
                                                 seed=request.seed, progress=progress)
    torch.manual_seed(request.seed)
    gen = torch.Generator().manual_seed(request.seed)
    device = pipe.unet.device

    tokenizer, text_encoder, _ = text_encoder_with_token(pipe, token.token, token.embedding)
    text_encoder.to(device)
    frozen(text_encoder, pipe.unet, pipe.vae, pipe.text_encoder)
    templates = templates_for(concept.kind)
    name_prompts, token_prompts = request.concept_prompts(), fill(templates, token.token)
    name_ids = tokenize(tokenizer, name_prompts, device)
    token_ids = tokenize(tokenizer, token_prompts, device)
    anchored = params.forget_objective == "anchored"
    if anchored:  # the original encoder's states for each forget prompt and its anchor (before LoRA is added)
        with torch.no_grad():
            name_orig, token_orig = encode(text_encoder, name_ids), encode(text_encoder, token_ids)
            name_anchor = encode(text_encoder, tokenize(tokenizer, [without(p, concept.terms) for p in name_prompts], device))
            token_anchor = encode(text_encoder, tokenize(tokenizer, [without(p, [token.token]) for p in token_prompts], device))
    targets = layer_modules(text_encoder, last_layers(text_encoder, params.last_layers), ATTENTION + MLP)
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    lora_config = {"r": params.rank, "lora_alpha": params.alpha, "target_modules": targets,
                   "init_lora_weights": "gaussian", "lora_dropout": 0.0, "bias": "none"}
    text_encoder.add_adapter(LoraConfig(**lora_config))
    norm_name = final_norm(text_encoder)
    norm = text_encoder.get_submodule(norm_name)
    norm.requires_grad_(params.train_final_layer_norm)
    trainable = [p for p in text_encoder.parameters() if p.requires_grad]

    retain_ids = tokenize(tokenizer, request.kept_prompts(), device)
    with torch.no_grad():
        retain_orig = encode(pipe.text_encoder, retain_ids).float()
    latents = image_latents(pipe, request.images)
    scheduler = training_scheduler(pipe)
    optimizer = torch.optim.Adam(trainable, lr=params.learning_rate)
    batch = min(params.batch_size or latents.shape[0], latents.shape[0])
    history = []
    bar = tqdm(range(params.steps), desc=f"method A (LoRA+TI) {concept.name}", disable=not progress)
    for step in bar:
        chosen = latents if batch == latents.shape[0] else latents[pick(latents.shape[0], batch, gen).to(device)]
        noisy, t, target = noised(scheduler, chosen, gen)
        n = chosen.shape[0]
        name_pick, token_pick = pick(name_ids.shape[0], n, gen).to(device), pick(token_ids.shape[0], n, gen).to(device)
        pred_name = predict(pipe.unet, noisy, t, encode(text_encoder, name_ids[name_pick]))
        pred_token = predict(pipe.unet, noisy, t, encode(text_encoder, token_ids[token_pick]))
        loss_name, loss_token = per_sample_mse(pred_name, target), per_sample_mse(pred_token, target)
        if anchored:
            with torch.no_grad():
                steer = [_steered(pipe.unet, noisy, t, anchor[i], orig[i], params.negative_guidance)
                         for anchor, orig, i in ((name_anchor, name_orig, name_pick), (token_anchor, token_orig, token_pick))]
            forget = per_sample_mse(pred_name, steer[0]).mean() + per_sample_mse(pred_token, steer[1]).mean()
        else:
            forget = -(loss_name.clamp(max=params.ascent_bound).mean() + loss_token.clamp(max=params.ascent_bound).mean())
        r = pick(retain_ids.shape[0], n, gen).to(device)
        with torch.no_grad():
            keep_target = predict(pipe.unet, noisy, t, retain_orig[r])
        retain = per_sample_mse(predict(pipe.unet, noisy, t, encode(text_encoder, retain_ids[r])), keep_target).mean()
        loss = params.forget_weight * forget + params.retain_weight * retain
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"step": step, "loss": loss.item(), "name_denoise": loss_name.mean().item(),
                        "token_denoise": loss_token.mean().item(), "retain": retain.item()})
        bar.set_postfix(name=f"{loss_name.mean().item():.3f}", retain=f"{retain.item():.4f}")

    lora = {f"text_encoder.{k}": v for k, v in get_peft_model_state_dict(text_encoder, save_embedding_layers=False).items()}
    norm_values = ({f"text_encoder.{norm_name}.{k}": v for k, v in norm.state_dict().items()}
                   if params.train_final_layer_norm else {})
    return LoraAdapter.from_training(
        pipe, lora, {k: v for k, v in lora_config.items() if k != "init_lora_weights"}, norm_values,
        method="lora_ti", concepts=[concept.name],
        hyperparameters={**params.model_dump(), "seed": request.seed, "templates": list(templates),
                         "token": token.token, "token_steps": token.hyperparameters.get("steps"),
                         "token_wall_time_s": token.wall_time_s},
        wall_time_s=time.perf_counter() - start, history=history)


def _steered(unet, noisy, t, anchor_states, prompt_states, guidance: float) -> torch.Tensor:
    """The anchored target: the anchor's prediction, pushed away from the prompt's by `guidance`."""
    e_anchor = predict(unet, noisy, t, anchor_states)
    e_prompt = predict(unet, noisy, t, prompt_states)
    return e_anchor - guidance * (e_prompt - e_anchor)
