"""The run config: one pydantic schema for every configs/*.yaml (toy world, SD 1.5, SD 2.1, ...).

Unknown keys are errors (a typo must not silently fall back to a default), and every error names
the file and the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..erasure.methods import METHODS
from ..domain.prompt_templates import CONCEPT_KINDS
from ..domain.file_errors import load_validated, write_json_schema


def _refuse_moved(data, key: str, message: str):
    """A key that older configs had: say where it went rather than pydantic's "extra field"."""
    if isinstance(data, dict) and key in data:
        raise ValueError(message)
    return data


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseModelSource(Strict):
    """Exactly one of `path` (a local diffusers folder) or `hub_id` (+ a pinned `revision`)."""
    path: Path | None = None
    hub_id: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    revision: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$",
                                 description="The hub commit hash; branches and tags can move.")
    allow_download: bool = Field(default=False, description="Off: load only from local files / the hub cache.")
    registry_name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$", description="Registered-model name for adapters of this base.")

    @model_validator(mode="after")
    def _one_source(self) -> "BaseModelSource":
        if (self.path is None) == (self.hub_id is None):
            raise ValueError("give exactly one of 'path' (local folder) or 'hub_id'")
        if self.hub_id and not self.revision:
            raise ValueError("'hub_id' needs a pinned 'revision' (commit hash) for reproducible lineage")
        return self

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else str(self.hub_id)


class Runtime(Strict):
    """How every step computes; where each step runs, and on which device, is its compute profile's (Compute)."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _device_moved(cls, data):
        # One device for all steps put the register step, on a CPU pod, on CUDA: say where it went, not "typo".
        return _refuse_moved(data, "device", "'device' moved to the compute profiles: give each step's profile its "
                             "device (compute.profiles.NAME.device, compute.steps.STEP: NAME)")


class Sampling(Strict):
    scheduler: Literal["ddim", "dpm_solver_pp"] | None = Field(
        default=None, description="The sampler the evaluation (and `lethe generate`) draws with; None: the model's own "
        "(its scheduler_config.json). dpm_solver_pp: DPM-Solver++ (2M, diffusers' DPMSolverMultistepScheduler), made "
        "for 10-20 steps; the model's noise schedule is kept either way.")
    steps: int = Field(default=25, gt=0, le=1000)
    guidance_scale: float = Field(default=7.5, ge=0)
    height: int | None = Field(default=None, gt=0, multiple_of=8)
    width: int | None = Field(default=None, gt=0, multiple_of=8)


class TextualInversionParams(Strict):
    steps: int = Field(default=300, gt=0)
    learning_rate: float = Field(default=5e-3, gt=0)
    batch_size: int = Field(default=4, gt=0)
    placeholder: str = Field(default="<concept>", pattern=r"^<[\w-]+>$")
    init_word: str | None = None
    templates: list[str] | None = Field(default=None, description="TI's prompts, '{}' for the placeholder (method A's "
                                        "token prompts too); None: the concept kind's templates (domain/prompt_templates.py). "
                                        "A base model that knows only some forms of prompt (the toy world) names them.")
    timesteps: tuple[float, float] = Field(default=(0.0, 1.0), description="The share of the noise schedule TI trains "
                                           "on, (low, high) in [0, 1]: the noisier half decides shape and colour, the "
                                           "rest the fine detail in which a rights holder's pictures differ most.")

    @model_validator(mode="after")
    def _timesteps(self) -> "TextualInversionParams":
        low, high = self.timesteps
        if not 0 <= low < high <= 1:
            raise ValueError(f"timesteps {self.timesteps}: need 0 <= low < high <= 1")
        if self.templates is not None and (not self.templates or any(t.count("{}") != 1 for t in self.templates)):
            raise ValueError(f"templates {self.templates}: each needs exactly one '{{}}' for the placeholder")
        return self


class AdversaryParams(Strict):
    """Adversarial rounds inside method A (AdvUnlearn's idea, with a TI-style attacker): token embeddings that
    learn, step by step against the adapter being trained, to bring the concept back from the ticket's images;
    their prompts join the forget term, so the adapter also closes the doors a recovery attack would find."""
    tokens: int = Field(default=0, ge=0, description="Adversarial embeddings trained alongside the LoRA; 0: off.")
    learning_rate: float = Field(default=0.01, gt=0, description="Their Adam rate (textual inversion's scale).")
    inner_steps: int = Field(default=1, gt=0, description="Attacker steps per LoRA step.")
    reset_every: int | None = Field(default=None, gt=0, description="Restart the attackers from their initial "
                                    "embeddings every N steps, as a fresh attack would start; None: never.")


class LoraTIParams(Strict):
    """Method A (seed 000): LoRA on the text encoder's last layers, ascent on name + TI prompts."""

    @model_validator(mode="before")
    @classmethod
    def _substitute_anchors_as_bool(cls, data):
        """Configs written before the three modes said true / false."""
        if isinstance(data, dict) and isinstance(data.get("substitute_anchors"), bool):
            data = {**data, "substitute_anchors": "always" if data["substitute_anchors"] else "never"}
        return data

    rank: int = Field(default=4, gt=0)
    alpha: float = Field(default=4.0, gt=0)
    last_layers: int = Field(default=2, gt=0)
    steps: int = Field(default=60, gt=0)
    batch_size: int | None = Field(default=None, gt=0, description="Images per step (mirror images count); "
                                   "None: all of them. Set it at SD scale: all 10 at 768 px do not fit in 80 GB.")
    learning_rate: float = Field(default=1e-3, gt=0)
    forget_weight: float = Field(default=1.0, ge=0)
    retain_weight: float = Field(default=10.0, ge=0)
    ascent_bound: float = Field(default=1.0, gt=0, description="Cap on the ascent term so it cannot diverge.")
    forget_objective: Literal["ascent", "anchored"] = Field(
        default="ascent", description="ascent: the paper's reading, push the images' denoising loss up (bounded). "
        "anchored (an extension, ESD's target in noise space): steer each forget prompt's prediction to its anchor "
        "(the prompt without the concept's words) pushed away from the concept by `negative_guidance`.")
    negative_guidance: float = Field(default=1.0, ge=0, description="anchored: target = e(anchor) - g (e(prompt) - e(anchor)).")
    concept_guidance: float = Field(default=0.0, ge=0, description=(
        "anchored: also subtract h (e(concept) - e('')) from the name prompts' targets, e(concept) the prediction "
        "for the concept's bare prompt (the TI templates' first, filled with its name). The anchor alone can itself "
        "be drawn as the concept ('a blue' draws triangles); this pushes away from the concept measured against the "
        "empty prompt, whatever the anchor leans to (composable diffusion's NOT)."))
    substitute_anchors: Literal["never", "leaning", "always"] = Field(default="never", description=(
        "anchored: a forget prompt's anchor that is itself a training retain prompt ('a circle' for 'a yellow "
        "circle') is trained to the original's prediction for the forget prompt with another value of the concept's "
        "vocabulary slot in its place ('a red circle' | 'a green circle' | 'a blue circle'), instead of kept where it "
        "was, and the forget prompts that reduce to it are anchored there too. leaning: only an anchor the model "
        "draws as the concept unasked (its prediction from pure noise nearer the forget prompt's than any "
        "substitute's; the toy model draws bare shapes yellow 43% of the time); always: every such anchor (it broke "
        "circles when erasing blue or green); never: none. No effect without a vocabulary, or where no anchor is a "
        "retain prompt. true/false read as always/never."))
    train_final_layer_norm: bool = Field(default=True, description="Also retrain the final layer norm (shipped beside the LoRA).")
    adversary: AdversaryParams = AdversaryParams()


class TextEncoderAscentParams(Strict):
    """Method B (seed 001): pure gradient ascent on the text encoder, the paper's Adam settings."""
    trainable: Literal["mlp-final-attn", "final-attn", "all"] = "mlp-final-attn"
    epochs: int = Field(default=4, gt=0)
    batch_size: int = Field(default=2, gt=0)
    learning_rate: float = Field(default=1e-5, gt=0)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(default=1e-6, gt=0)
    weight_decay: float = Field(default=1e-8, ge=0)


class ClosedFormParams(Strict):
    """Method C (seed 002): ScaPre/UCE closed-form edit of cross-attention to_k / to_v."""
    erase_scale: float = Field(default=1.0, gt=0)
    preserve_scale: float = Field(default=1.0, ge=0)
    lamb: float = Field(default=0.5, gt=0)
    anchor: str = " "
    rollback_min: float = Field(default=0.8, ge=0, le=1)
    row_mask: bool = True
    large_scale_solve: bool = False
    negative_guidance: float = Field(default=0.0, ge=0, description="Extension, not in UCE/ScaPre: erase targets "
                                     "W_old(c_anchor - g (c_concept - c_anchor)) "
                                     "(ESD-style negative guidance in key/value space); 0 = plain UCE targets W_old c_anchor.")
    mask_samples: int = Field(default=5, gt=0, description="Noisy copies per label (concept / empty) for the row mask's mutual "
                                                           "information.")
    mask_temperature: float = Field(default=0.7, gt=0, description="Row mask m = sigmoid(z / temperature)^power of the z-scored "
                                                                   "mutual information.")
    mask_power: float = Field(default=2.0, gt=0, description="Row mask exponent (ScaPre's p).")
    noise_sigma: float = Field(default=0.01, ge=0, description="Std of the noise added to concept / empty vectors for the mask "
                                                               "and the entropy factor.")
    entropy_samples: int = Field(default=20, gt=0, description="Noisy copies per concept vector for the rows' entropy factor.")
    entropy_bins: int = Field(default=20, gt=1, description="Histogram bins of the rows' entropy factor.")
    spectral_temperature: float = Field(default=1.0, gt=0, description="large_scale_solve: temperature of the spectral "
                                                                       "regulariser's singular-value gate.")
    spectral_power: float = Field(default=1.0, gt=0, description="large_scale_solve: power of the spectral regulariser's "
                                                                 "singular-value gate.")


# The method names are METHODS' keys (components/erasure/methods.py), in its order; each also has its params block below.
MethodName = Literal[tuple(METHODS)]


class Erasure(Strict):
    method: MethodName = "lora_ti"
    textual_inversion: TextualInversionParams = TextualInversionParams()
    lora_ti: LoraTIParams = LoraTIParams()
    te_ascent: TextEncoderAscentParams = TextEncoderAscentParams()
    closed_form: ClosedFormParams = ClosedFormParams()


class Detector(Strict):
    """How concept presence is judged: the toy CNN, zero-shot CLIP over alternatives, or your own."""
    kind: Literal["toy", "clip_zero_shot", "custom"]
    path: Path | None = None
    alternatives: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs(self) -> "Detector":
        if self.kind in ("toy", "custom") and self.path is None:
            raise ValueError(f"detector kind {self.kind!r} needs a 'path'")
        if self.kind == "clip_zero_shot" and not self.alternatives:
            raise ValueError("detector kind 'clip_zero_shot' needs 'alternatives' to compare the concept against")
        return self


class AttackRestart(Strict):
    """One textual-inversion run of the recovery attack; several restarts make a stronger attack."""
    seed_offset: int = Field(default=0, ge=0, description="Added to runtime.seed for this run.")
    init_word: str | None = Field(default=None, description="Word the token starts from; None: "
                                                            "erasure.textual_inversion.init_word.")


class RecoveryAttack(Strict):
    """Textual inversion against the erased model with the ticket's images (the erasure's TI settings),
    plus the concept's paraphrases. The control (the same TI on the original model) must find the concept,
    or the attack proves nothing and the gate fails closed (thresholds.min_attack_control_rate)."""
    placeholder: str = Field(default="<recovered>", pattern=r"^<[\w-]+>$")
    steps: int | None = Field(default=None, gt=0, description="TI steps for the attack; None: erasure.textual_inversion.steps.")
    restarts: list[AttackRestart] = Field(default_factory=lambda: [AttackRestart(), AttackRestart(seed_offset=1)],
                                          min_length=1, description="TI runs on the erased model; the worst one counts.")
    templates: list[str] = Field(default_factory=lambda: ["a {concept}", "a photo of a {concept}"], min_length=1,
                                 description="Prompts the learned token is drawn with ({concept} is the token).")
    on_original: bool = Field(default=True, description="Run the control (first restart's TI on the original model, "
                              "and each later restart's while the earlier ones miss min_attack_control_rate); the "
                              "first is free when the erasure already learned that token, as method A does.")
    images_per_prompt: int | None = Field(
        default=None, gt=0, description="Images per attack template, for every restart and the control; null: "
        "evaluation.images_per_prompt. A restart's rate is pooled over its templates' images and judged by its "
        "interval's upper end: with 16 images in all, 4 found pass a 50% bar; with 32, 10 do (README, Evaluation).")

    @model_validator(mode="after")
    def _templates(self) -> "RecoveryAttack":
        bad = [t for t in self.templates if "{concept}" not in t]
        if bad:
            raise ValueError(f"attack templates must contain '{{concept}}': {bad}")
        return self


class Vocabulary(Strict):
    """What a small, closed-vocabulary base model knows (the toy world): every caption is a template
    whose {slots} take every value of their slot. The forget set is every caption naming the concept,
    the retain corpus every caption that does not, the near neighbours the first template's captions
    with the concept swapped for another value of its slot."""
    slots: dict[str, list[str]] = Field(min_length=1)
    captions: list[str] = Field(min_length=1, description="Templates over the slots, canonical form first.")

    @model_validator(mode="after")
    def _known_slots(self) -> "Vocabulary":
        import string

        for template in self.captions:
            used = [f for _, f, _, _ in string.Formatter().parse(template) if f]
            unknown = [f for f in used if f not in self.slots]
            if unknown or not used:
                raise ValueError(f"caption template {template!r} must use slots from {sorted(self.slots)}")
        return self


class RetainCorpus(Strict):
    """Prompts that must not change, whatever the concept: a base model's everyday captions (a file) and/or
    its vocabulary's captions. Split once, by a hash of each prompt, into a part that training may use and a
    held-out part that only evaluation sees (`split`); prompts naming the ticket's concept are removed from both."""
    file: Path | None = Field(default=None, description="Text file, one caption per line ('#' starts a comment).")
    heldout_fraction: float = Field(default=0.5, gt=0, lt=1, description="Share of the corpus kept from training.")
    split: Literal["by_prompt", "by_content"] = Field(
        default="by_prompt", description="by_prompt: each prompt by its hash alone. by_content: the vocabulary's "
        "captions made from the same slot values are split among themselves (at least one trained, one held out); "
        "a corpus file's lines are split by prompt either way.")
    max_heldout: int | None = Field(default=None, gt=0, description="Evaluate at most this many held-out prompts "
                                    "(a fixed, hash-ordered subset), to bound the cost on big corpora.")


class SequentialDraw(Strict):
    """Draw the gated sets in looks and stop drawing what the gate has decided (components/evaluation/sequential.py):
    a prompt gets the next look's images only while a check that reads it is undecided. Every look's interval is
    widened for the number of looks (Bonferroni), so looking more than once does not let luck pass a bar."""
    images_per_prompt: list[int] = Field(
        min_length=2, description="Images per prompt at each look, cumulative and increasing, e.g. [6, 16]. The last "
        "look draws at least the fixed design's count (images_per_prompt, min_images_per_set) of each prompt.")

    @model_validator(mode="after")
    def _increasing(self) -> "SequentialDraw":
        looks = self.images_per_prompt
        if looks[0] < 1 or any(b <= a for a, b in zip(looks, looks[1:])):
            raise ValueError(f"sequential.images_per_prompt must be positive and increasing: {looks}")
        return self


ConceptKindName = Literal[CONCEPT_KINDS]


class Evaluation(Strict):
    images_per_prompt: int = Field(default=8, gt=0, description="Images per prompt and model; see README "
                                   "(Evaluation) for what the 95% intervals make of it.")
    min_images_per_set: int | None = Field(
        default=None, gt=0, description="Each gated set (forget, retain, near neighbours) is drawn with at least this "
        "many images in all: a set with few prompts gets more images per prompt, so that its 95% interval can pass its "
        "bar (README, Evaluation). null: images_per_prompt for every prompt.")
    sequential: SequentialDraw | None = Field(default=None, description="Draw in looks, stopping what is decided; "
                                              "null: every prompt drawn once at its fixed count.")
    batch_size: int = Field(default=16, gt=0, description="Images per generation call; does not change the images.")
    forget_templates: dict[ConceptKindName, list[str]] = Field(
        default_factory=dict, description="Per concept kind, prompts that name the concept ({concept}); a kind not "
        "listed uses its textual-inversion templates. The concept's aliases fill them too.")
    attribute_templates: list[str] = Field(default_factory=list, description="The concept in contexts and with "
                                           "attributes people combine it with ({concept}), e.g. 'a {concept} at night'.")
    vocabulary: Vocabulary | None = None
    retain_corpus: RetainCorpus = RetainCorpus()
    retain_prompts: list[str] = Field(default_factory=list, description="Named retain prompts: trained on and "
                                      "evaluated (not held out); dropped when they name the ticket's concept.")
    paraphrases: dict[str, list[str]] = Field(default_factory=dict, description="Concept name -> prompts that describe "
                                              "it without its name (attack); the ticket's own paraphrases add to them.")
    attack: RecoveryAttack = RecoveryAttack()
    clip_model: Path | None = None
    detector: Detector
    report_images_per_prompt: int = Field(default=4, gt=0, description="Images per prompt shown in the report.")

    @model_validator(mode="after")
    def _templates(self) -> "Evaluation":
        bad = [t for ts in [*self.forget_templates.values(), self.attribute_templates] for t in ts if "{concept}" not in t]
        if bad:
            raise ValueError(f"forget_templates and attribute_templates must contain '{{concept}}': {bad}")
        return self


class ImageValidation(Strict):
    """Rules for a ticket's image set, checked with Great Expectations before anything trains."""
    min_images: int = Field(default=4, ge=1, description="Few-shot methods need several views of the concept.")
    max_images: int = Field(default=50, ge=1)
    formats: list[Literal["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"]] = Field(
        default_factory=lambda: ["PNG", "JPEG", "WEBP"], min_length=1)
    min_side: int = Field(default=256, ge=1, description="Smallest allowed width or height, in pixels.")
    max_pixels: int = Field(default=4096 * 4096, ge=1, description="Decompression-bomb guard: larger headers are not decoded.")
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    near_duplicate_bits: int = Field(default=4, ge=0, le=64, description="Two images whose 64-bit perceptual hashes differ "
                                     "in at most this many bits are near duplicates.")
    # Content rules: an image must be able to show the concept. Measured (components/validation/image_facts.py) on the
    # example ticket, 2000 renders of the toy world's render_shape, 300 synthetic photo-like images (gradient,
    # shapes, blur, noise, JPEG 60-91) at 33-1024 px, and real photos (scikit-learn's china/flower, matplotlib's
    # grace_hopper and two logos, whole and as thumbnails down to 32 px) against uniform colours, i.i.d. noise
    # (32-3000 px, also JPEG-compressed at quality 30-95, and upscaled 2x and 4x):
    #   pixel_std: uniform 0 (JPEG'd < 1); good images >= 11 (toy renders >= 18, photos >= 55)
    #   noise_ratio: noise >= 0.90 (nearest-upscaled too; bilinear 4x-upscaled noise 0.68 is missed);
    #     good images <= 0.34 (toy renders 0.32, photos 0.23, photo-like 0.34, 128 px photo crops 0.35)
    #   visible_fraction: logos with a transparent background 0.17-0.61; fully transparent 0
    #   aspect ratio: toy 1:1, photos <= 16:9; matplotlib's wordmark logo is 4.17:1 and is refused (training
    #     sees its centre square only)
    max_frames: int = Field(default=1, ge=1, description="More frames is an animation or a multi-page file; "
                            "training would see the first only.")
    max_aspect_ratio: float = Field(default=4.0, ge=1, description="Longer side over shorter side; training sees the "
                                    "centre square only.")
    min_pixel_std: float = Field(default=2.0, ge=0, description="An image whose RGB values vary less (standard "
                                 "deviation, 0-255) is blank: one uniform colour.")
    min_visible_fraction: float = Field(default=0.02, ge=0, le=1, description="Share of pixels that must be visible "
                                        "(alpha >= 32 of 255); less is a (nearly) fully transparent image.")
    max_noise_ratio: float = Field(default=0.75, gt=0, description="Neighbouring-pixel difference over twice the pixel "
                                   "variance (1 for independent random pixels, <= 0.35 for photos and drawings); "
                                   "above it an image is pure noise.")

    @model_validator(mode="after")
    def _range(self) -> "ImageValidation":
        if self.min_images > self.max_images:
            raise ValueError(f"min_images {self.min_images} is above max_images {self.max_images}")
        return self


class Thresholds(Strict):
    """The gate: promoted only if every metric is within these bounds. A rate is compared by the pessimistic
    end of its 95% Wilson interval (the upper end of a rate, the upper end of a drop), so a small sample
    cannot pass on luck. `None` leaves a metric reported but not gated."""
    max_forget_detection_rate: float = Field(
        default=0.10, ge=0, le=1, description="Forget prompts, all images: share with the concept (upper 95%).")
    max_forget_worst_rate: float | None = Field(
        default=0.50, ge=0, le=1, description="The worst single forget prompt's concept rate (upper 95%): one way of asking left "
                                              "intact.")
    max_retain_clip_drop: float | None = Field(
        default=0.03, ge=0, description="Relative drop of the mean CLIP score on held-out retain prompts, (before - after) / "
                                        "before.")
    max_retain_accuracy_drop: float | None = Field(
        default=0.10, ge=0, le=1, description="Held-out retain prompts: drop (points / 100) of the detector's accuracy (upper "
                                              "95%).")
    max_retain_worst_drop: float | None = Field(
        default=0.50, ge=0, le=1, description="The worst single held-out retain prompt's accuracy drop (upper 95%): one concept "
                                              "wiped out.")
    max_neighbour_accuracy_drop: float | None = Field(
        default=0.10, ge=0, le=1, description="Near neighbours: drop of the detector's accuracy (upper 95%).")
    max_neighbour_worst_drop: float | None = Field(
        default=0.50, ge=0, le=1, description="The worst single near neighbour's accuracy drop (upper 95%).")
    max_kid: float | None = Field(default=0.05, ge=0, description="KID between original and erased held-out retain images, on "
                                                                  "CLIP image features.")
    max_attack_success: float = Field(default=0.50, ge=0, le=1, description="Worst concept rate the recovery attack reached (TI "
                                                                            "restarts or paraphrases; upper 95%).")
    min_attack_control_rate: float = Field(
        default=0.90, ge=0, le=1, description="The attack's control on the original model must find the concept this often "
                                              "(point estimate; the strongest restart, a later one run there only while "
                                              "the earlier ones miss), or the attack is void and the gate fails.")
    max_collapse_rate: float | None = Field(
        default=None, ge=0, le=1, description="Forget prompts: share of blank or noise images on the erased model (upper 95%); "
                                              "None: reported only.")


# The stage steps both pipelines run (pipelines/takedown_pipeline.py, sweep_pipeline.py), by whose names the compute
# block places them; the steps around them (admit_ticket, find_pending_tickets, flag_failures) load no model.
TAKEDOWN_STEPS = ("validate_ticket_images", "learn_concept_token", "train_unlearning", "evaluate_adapter",
                  "register_adapter", "gate", "release")
TakedownStep = Literal[TAKEDOWN_STEPS]


class ComputeProfile(Strict):
    """What a step runs on: the device its code loads the model on, and what its pod asks the orchestrator for
    (ZenML ResourceSettings; the local orchestrator only records them). Unset: the orchestrator's default."""
    device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", description="Where the step loads the model; "
                                                   "auto: CUDA if the machine has it, else CPU.")
    gpu_count: int = Field(default=0, ge=0, description="GPUs the step's pod asks for; on a cluster, > 0 also sends "
                           "it to the stack config's gpu_node.")
    cpu_count: float | None = Field(default=None, gt=0)
    memory: str | None = Field(default=None, pattern=r"^\d+(KB|KiB|MB|MiB|GB|GiB|TB|TiB)$", description="e.g. '32GiB'")

    @model_validator(mode="after")
    def _device_matches_gpus(self) -> "ComputeProfile":
        # A CUDA step without a GPU request lands on a CPU pod and fails at model loading; the reverse idles a GPU.
        if self.device == "cuda" and not self.gpu_count:
            raise ValueError("device 'cuda' needs gpu_count >= 1: on a cluster its pod would get no GPU")
        if self.device == "cpu" and self.gpu_count:
            raise ValueError(f"gpu_count {self.gpu_count} with device 'cpu' reserves GPUs the step never uses")
        return self

    def resource_settings(self) -> dict:
        """ZenML ResourceSettings fields, only those set."""
        fields = {"cpu_count": self.cpu_count, "gpu_count": self.gpu_count or None, "memory": self.memory}
        return {key: value for key, value in fields.items() if value is not None}


CPU_PROFILE = ComputeProfile()  # a step no profile names: CPU, the orchestrator's default resources


class Compute(Strict):
    """Placement as data: named profiles, and which takedown step runs on which (a step not listed: CPU_PROFILE)."""
    profiles: dict[str, ComputeProfile] = Field(default_factory=dict, description="Profile name -> what a step needs.")
    steps: dict[TakedownStep, str] = Field(default_factory=dict, description="Takedown step -> profile name.")

    @model_validator(mode="after")
    def _profiles_exist(self) -> "Compute":
        for step, name in self.steps.items():
            if name not in self.profiles:
                raise ValueError(f"steps.{step}: no profile {name!r} in compute.profiles (defined: "
                                 f"{', '.join(sorted(self.profiles)) or 'none'})")
        return self

    def profile(self, step: str) -> ComputeProfile:
        """The profile of a takedown step; a name that is no step is a bug, not a CPU step."""
        if step not in TAKEDOWN_STEPS:
            raise KeyError(f"{step!r} is not a takedown step ({', '.join(TAKEDOWN_STEPS)})")
        return self.profiles[self.steps[step]] if step in self.steps else CPU_PROFILE


class RunConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$")
    base_model: BaseModelSource
    runtime: Runtime = Runtime()
    sampling: Sampling = Sampling()
    validation: ImageValidation = ImageValidation()
    erasure: Erasure = Erasure()
    evaluation: Evaluation
    thresholds: Thresholds = Thresholds()
    compute: Compute = Compute()

    @model_validator(mode="before")
    @classmethod
    def _orchestration_moved(cls, data):
        return _refuse_moved(data, "orchestration", "'orchestration' became 'compute': profiles (device, gpu_count, "
                             "cpu_count, memory) and which step runs on which (see configs/sd21.yaml)")

    def resolve_paths(self, folder: Path) -> "RunConfig":
        """Relative paths in a config file are relative to that file's folder."""
        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else (folder / p).resolve()
        base = self.base_model.model_copy(update={"path": fix(self.base_model.path)})
        corpus = self.evaluation.retain_corpus
        ev = self.evaluation.model_copy(update={
            "clip_model": fix(self.evaluation.clip_model),
            "retain_corpus": corpus.model_copy(update={"file": fix(corpus.file)}),
            "detector": self.evaluation.detector.model_copy(update={"path": fix(self.evaluation.detector.path)})})
        return self.model_copy(update={"base_model": base, "evaluation": ev})


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run config; raises InputFileError naming the file, key and rule."""
    path = Path(path)
    return load_validated(path, RunConfig).resolve_paths(path.resolve().parent)



def write_run_config_schema(out: Path) -> Path:
    return write_json_schema(RunConfig, out)
