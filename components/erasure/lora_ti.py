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
becomes that of "a circle" pushed away from red, so the concept goes and the rest of the prompt stays. The learned token
<c*> makes the erasure cover what the images show, not only the literal name. The retain term keeps the U-Net's predictions
for retain prompts (and the empty prompt, which classifier-free guidance uses) where they were.
The paper's exact weighting is not public; this is the reading in ../shared/METHODS.md.

Given a `start` (the production release), every "original" above is the production model's: the adapter is trained
on top of what is served, so its retain term keeps earlier takedowns' concepts erased (starting_point.py). The LoRA
is then a difference over production's weights; the final norm is stored as base + (trained - production's), a
difference too, so that a release adds every takedown's change over the base.
"""
from __future__ import annotations

import time

import torch
from ..domain.progress_lines import progress_bar

from .denoising import encode, frozen, image_latents, noised, per_sample_mse, pick, predict, tokenize, training_scheduler
from .leaning_anchors import anchor_leanings
from .lora_adapter import LoraAdapter
from .tensors import get_tensor
from ..domain.prompt_templates import fill
from .text_encoder_parts import ATTENTION, MLP, final_norm, last_layers, layer_modules
from .starting_point import StartingPoint, label_of
from .textual_inversion import initial_row, learn_token, prompt_templates, text_encoder_with_token
from ..domain.prompt_terms import replaced, without


def erase_lora_ti(pipe, request, config, progress: bool = False, start: StartingPoint | None = None) -> LoraAdapter:
    """config: run_config.Erasure (uses .lora_ti and .textual_inversion). `pipe` is the base model; `start`, a change
    over it to train on top of (its weights are fused into copies; `pipe` is left as it is)."""
    params = config.lora_ti
    began = time.perf_counter()
    concept = request.concept
    token = request.learned_token or learn_token(pipe, concept, request.images, config.textual_inversion,
                                                 seed=request.seed, progress=progress)
    torch.manual_seed(request.seed)
    gen = torch.Generator().manual_seed(request.seed)
    device = pipe.unet.device
    source = start.change.fused_copy(pipe) if start is not None else pipe  # the model training starts from
    unet = source.unet

    tokenizer, text_encoder, _ = text_encoder_with_token(source, token.token, token.embedding)
    adversary = _Adversary(tokenizer, text_encoder, params.adversary, config.textual_inversion, token.embedding)
    text_encoder.to(device)
    frozen(text_encoder, pipe.unet, pipe.vae, pipe.text_encoder, source.unet, source.text_encoder)
    templates = prompt_templates(config.textual_inversion, concept.kind)  # the token's prompts, as TI learned it
    name_prompts, token_prompts = request.concept_prompts(), fill(templates, token.token)
    name_ids = tokenize(tokenizer, name_prompts, device)
    token_ids = tokenize(tokenizer, token_prompts, device)
    adversary_ids = [tokenize(tokenizer, fill(templates, word), device) for word in adversary.words]
    anchored = params.forget_objective == "anchored"
    negation = None
    if anchored:  # the original encoder's states for each forget prompt and its anchor (before LoRA is added)
        with torch.no_grad():
            name_orig, token_orig = encode(text_encoder, name_ids), encode(text_encoder, token_ids)
            name_anchor = encode(text_encoder, tokenize(tokenizer, [without(p, concept.terms) for p in name_prompts], device))
            token_anchor = encode(text_encoder, tokenize(tokenizer, [without(p, [token.token]) for p in token_prompts], device))
            negation = (encode(text_encoder, tokenize(tokenizer, [fill(templates, concept.name)[0], ""], device))
                        if params.concept_guidance > 0 else None)
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

    # A forget prompt whose anchor is a retain caption ("a circle" for "a yellow circle", which the toy model draws
    # yellow 43% of the time): with `substitute_anchors`, the caption is trained to the original's prediction for the
    # prompt with another value of the concept's slot ("a red circle" | "a green circle" | ...) instead of kept, so
    # the erased model stops drawing the concept unasked, and the forget prompts that reduce to it are steered from
    # there: from the original's "a circle", itself yellow, "a photo of a yellow circle" kept 38% (BENCHMARKS.md, tenth
    # and twelfth sessions). "leaning": only the anchors the model draws as the concept (leaning_anchors.py).
    kept = request.kept_prompts()
    candidates = _unasked_anchors(name_prompts, concept.terms, kept, request.substitutes) \
        if anchored and params.substitute_anchors != "never" else {}
    leanings = anchor_leanings(unet, source.text_encoder, tokenizer, candidates, _last_timestep(pipe), request.seed) \
        if params.substitute_anchors == "leaning" else {}
    unasked = {a: subs for a, (_, subs) in candidates.items() if params.substitute_anchors == "always" or leanings[a]["leans"]}
    retain_ids = tokenize(tokenizer, [p for p in kept if p not in unasked], device)
    with torch.no_grad():
        retain_orig = encode(source.text_encoder, retain_ids).float()
        if unasked:
            unasked_ids = tokenize(tokenizer, list(unasked), device)
            substitute_orig = [encode(source.text_encoder, tokenize(tokenizer, subs, device)) for subs in unasked.values()]
    # per name prompt, the substituted anchor it reduces to (its index in `unasked`), or -1
    name_substituted = [list(unasked).index(a) if (a := without(p, concept.terms)) in unasked else -1 for p in name_prompts]
    latents = image_latents(pipe, request.images)
    scheduler = training_scheduler(pipe)
    optimizer = torch.optim.Adam(trainable, lr=params.learning_rate)
    batch = min(params.batch_size or latents.shape[0], latents.shape[0])
    history = []
    bar = progress_bar(range(params.steps), desc=f"method A (LoRA+TI) {concept.name}", unit="step", enabled=progress)
    for step in bar:
        chosen = latents if batch == latents.shape[0] else latents[pick(latents.shape[0], batch, gen).to(device)]
        n = chosen.shape[0]
        attacker_loss = adversary.attack(unet, scheduler, chosen, adversary_ids, step, gen)
        noisy, t, target = noised(scheduler, chosen, gen)
        name_pick, token_pick = pick(name_ids.shape[0], n, gen).to(device), pick(token_ids.shape[0], n, gen).to(device)
        r = pick(retain_ids.shape[0], n, gen).to(device)
        # Every prompt of the step in one U-Net call (forget prompts, the attackers' prompts, retain prompts)
        forget_ids = [name_ids[name_pick], token_ids[token_pick]]
        adv_pick = [pick(len(templates), n, gen).to(device) for _ in adversary_ids]
        forget_ids += [ids[k] for ids, k in zip(adversary_ids, adv_pick)]
        if unasked:  # per image, an unasked anchor and one of its substitutes, the original's states for it
            anchor_pick = pick(len(unasked), n, gen).to(device)
            forget_ids.append(unasked_ids[anchor_pick])
            substitute = torch.cat([_one_of(substitute_orig[a], gen) for a in anchor_pick.tolist()])
        name_anchors, name_anchor_pick = name_anchor, name_pick
        if any(a >= 0 for a in name_substituted):  # per image, its name prompt's anchor states
            name_anchors = torch.cat([_one_of(substitute_orig[a], gen) if (a := name_substituted[k]) >= 0
                                      else name_anchor[k:k + 1] for k in name_pick.tolist()])
            name_anchor_pick = torch.arange(n, device=device)
        groups = len(forget_ids)
        states = encode(text_encoder, torch.cat([*forget_ids, retain_ids[r]]))
        preds = predict(unet, noisy.repeat(groups + 1, 1, 1, 1), t.repeat(groups + 1), states).split(n)
        forget_preds, retain_pred = preds[:groups], preds[groups]
        loss_name, loss_token = per_sample_mse(forget_preds[0], target), per_sample_mse(forget_preds[1], target)
        with torch.no_grad():
            keep_target, *steer = _targets(unet, noisy, t, retain_orig[r], params.negative_guidance, [
                (name_anchors, name_anchor_pick, name_orig, name_pick),
                *[(token_anchor, k, token_orig, k) for k in [token_pick, *adv_pick]],
                # the substitute as both anchor and prompt: its own prediction, unpushed
                *([(substitute, torch.arange(n), substitute, torch.arange(n))] if unasked else [])] if anchored else [],
                negation, params.concept_guidance)
        if anchored:
            forget = sum(per_sample_mse(pred, goal).mean() for pred, goal in zip(forget_preds, steer))
        else:
            forget = -sum(per_sample_mse(pred, target).clamp(max=params.ascent_bound).mean() for pred in forget_preds)
        retain = per_sample_mse(retain_pred, keep_target).mean()
        loss = params.forget_weight * forget + params.retain_weight * retain
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"step": step, "loss": loss.item(), "name_denoise": loss_name.mean().item(),
                        "token_denoise": loss_token.mean().item(), "retain": retain.item(),
                        **({"attacker_denoise": attacker_loss} if attacker_loss is not None else {})})
        bar.set_postfix(name=f"{loss_name.mean().item():.3f}", retain=f"{retain.item():.4f}")

    lora = {f"text_encoder.{k}": v for k, v in get_peft_model_state_dict(text_encoder, save_embedding_layers=False).items()}
    norm_values = ({f"text_encoder.{norm_name}.{k}": v for k, v in norm.state_dict().items()}
                   if params.train_final_layer_norm else {})
    if start is not None:  # the norm's change over production, kept as a change over the base (see above)
        norm_values = {k: get_tensor(pipe, k).detach().float().cpu()
                       + (v.detach().float().cpu() - get_tensor(source, k).detach().float().cpu())
                       for k, v in norm_values.items()}
    return LoraAdapter.from_training(
        pipe, lora, {k: v for k, v in lora_config.items() if k != "init_lora_weights"}, norm_values,
        method="lora_ti", concepts=[concept.name],
        hyperparameters={**params.model_dump(), "seed": request.seed, "templates": list(templates),
                         "token": token.token, "token_steps": token.hyperparameters.get("steps"),
                         "token_wall_time_s": token.wall_time_s,
                         "trained_on": label_of(start), "substituted_anchors": list(unasked),
                         "anchor_leanings": leanings},
        wall_time_s=time.perf_counter() - began, history=history)


def _unasked_anchors(name_prompts: list[str], terms, kept: list[str], substitutes: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Retain captions that are a forget prompt's anchor -> (that forget prompt, it with each substitute in the
    concept's place): "a circle" -> ("a yellow circle", ["a red circle", "a green circle", "a blue circle"]); none
    without substitutes."""
    out: dict[str, tuple[str, list[str]]] = {}
    for p in name_prompts if substitutes else []:
        anchor = without(p, terms)
        if anchor in kept and anchor != p:
            out.setdefault(anchor, (p, list(dict.fromkeys(replaced(p, terms, s) for s in substitutes))))
    return out


def _one_of(bank: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One row of `bank`, drawn from `gen` (kept 2-D)."""
    k = torch.randint(len(bank), (1,), generator=gen)
    return bank[k.to(bank.device)]


def _last_timestep(pipe) -> int:
    return int(pipe.scheduler.config.num_train_timesteps) - 1


def _targets(unet, noisy, t, retain_states, guidance: float, pairs, negation=None,
             concept_guidance: float = 0.0) -> list[torch.Tensor]:
    """In one U-Net call: the original's prediction for the retain prompts, then per pair the anchored target, the
    anchor's prediction pushed away from the prompt's by `guidance`. A pair is (anchor bank, anchor pick, prompt bank,
    prompt pick): banks of encoder states and, per image, the row it uses. Rows that several pairs pick for an image
    are predicted once (the token's and both attackers' pairs read the same two templates' states). `negation`: the
    states of the concept's bare prompt and of the empty prompt; the first pair's target (the name prompts') is also
    pushed by `concept_guidance` away from the concept as the first differs from the second, a direction that does
    not depend on the anchor. Not the token's and attackers' targets: pushed there too, the recovery attack found
    green again in 62% of images instead of 6% (BENCHMARKS.md)."""
    n = noisy.shape[0]
    samples, states, rows = list(range(n)), [retain_states], {}

    def row(bank: torch.Tensor, k: int, i: int) -> int:  # the batch row of bank[k] on image i, added once
        if (id(bank), k, i) not in rows:
            rows[id(bank), k, i] = len(samples)
            samples.append(i)
            states.append(bank[k:k + 1])
        return rows[id(bank), k, i]

    at = [([row(anchor, k, i) for i, k in enumerate(a_pick.tolist())],
           [row(prompt, k, i) for i, k in enumerate(p_pick.tolist())]) for anchor, a_pick, prompt, p_pick in pairs]
    if negation is not None:
        at.append(([row(negation, 0, i) for i in range(n)], [row(negation, 1, i) for i in range(n)]))
    index = torch.tensor(samples, device=noisy.device)
    preds = predict(unet, noisy[index], t[index], torch.cat(states))
    e = [(preds[torch.tensor(a, device=preds.device)], preds[torch.tensor(p, device=preds.device)]) for a, p in at]
    steered = [anchor - guidance * (prompt - anchor) for anchor, prompt in e[:len(pairs)]]
    if negation is not None:
        concept, empty = e[-1]
        steered = [steered[0] - concept_guidance * (concept - empty), *steered[1:]]
    return [preds[:n], *steered]


class _Adversary:
    """Attacker embeddings in the (copied) text encoder's table, trained by TI's loss through the current
    adapter; they start from TI's init word and from the learned concept token, alternately, and restart
    there every `reset_every` steps."""

    def __init__(self, tokenizer, text_encoder, params, ti_params, concept_row: torch.Tensor):
        self.params, self.timesteps, self.text_encoder = params, tuple(ti_params.timesteps), text_encoder
        self.words = [f"<lethe-adversary-{j}>" for j in range(params.tokens)]
        if not self.words:
            return
        if tokenizer.add_tokens(self.words) != len(self.words):
            raise ValueError("the adversary's placeholders are already in the tokenizer's vocabulary")
        self.ids = tokenizer.convert_tokens_to_ids(self.words)
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        self.table = text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            word_row = initial_row(tokenizer, self.table[: self.ids[0]], ti_params.init_word)
            self.starts = torch.stack([word_row if j % 2 == 0 else concept_row.reshape(-1).to(word_row)
                                       for j in range(len(self.words))])
        self._reset()

    def _reset(self) -> None:
        with torch.no_grad():
            self.table[self.ids] = self.starts.to(self.table)
        self.rows = self.table[self.ids].detach().clone().float().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.rows], lr=self.params.learning_rate)

    def attack(self, unet, scheduler, latents, prompt_ids: list[torch.Tensor], step: int, gen) -> float | None:
        """`inner_steps` TI steps of every attacker against the adapter as it is now; their mean loss."""
        if not self.words:
            return None
        if self.params.reset_every and step and step % self.params.reset_every == 0:
            self._reset()
        n, losses = latents.shape[0], []
        for _ in range(self.params.inner_steps):
            noisy, t, target = noised(scheduler, latents.repeat(len(self.words), 1, 1, 1), gen, self.timesteps)
            ids = torch.cat([ids[pick(ids.shape[0], n, gen).to(ids.device)] for ids in prompt_ids])
            self.table.requires_grad_(True)  # for this loss only: the LoRA's own step never sees these rows move
            loss = per_sample_mse(predict(unet, noisy, t, encode(self.text_encoder, ids)), target).mean()
            (grad,) = torch.autograd.grad(loss, [self.table])
            self.table.requires_grad_(False)
            self.optimizer.zero_grad(set_to_none=True)
            self.rows.grad = grad[self.ids].to(self.rows)
            self.optimizer.step()
            with torch.no_grad():
                self.table[self.ids] = self.rows.detach().to(self.table)
            losses.append(loss.item())
        return sum(losses) / len(losses)
