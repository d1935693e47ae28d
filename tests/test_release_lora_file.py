"""A release's text-encoder change as one LoRA file (fast): two method-A adapters merged into a release, written
in diffusers' and kohya's formats, loaded back by diffusers itself (its kohya converter is an implementation
of the key mapping we did not write), and fused: the same weights as the release."""
import pytest
import torch
from safetensors.torch import load_file

from components.erasure.lora_adapter import NORM_FILE, LoraAdapter
from components.erasure.tensors import get_tensor
from components.erasure.weight_delta import WeightDelta
from components.release.composition import compose
from components.release.lora_file import (KOHYA_FILE, LoraFileRefused, canonical_module, kohya_name, live_module,
                                          module_of_kohya, release_lora, write_lora_files)
from components.release.record import ReleaseEntry

NORM = "final_layer_norm"


@pytest.fixture(scope="module")
def pipe(toy_world):
    return toy_world[0].pipeline


def linear_modules(pipe) -> list[str]:
    return [n for n, m in pipe.text_encoder.named_modules() if isinstance(m, torch.nn.Linear)]


def adapter(pipe, concept: str, rank: int, seed: int) -> LoraAdapter:
    """A method-A adapter as training leaves one: LoRA factors on the last layer's projections, a new final norm."""
    g = torch.Generator().manual_seed(seed)
    modules = linear_modules(pipe)[-6:]
    lora = {}
    for m in modules:
        w = get_tensor(pipe, f"text_encoder.{m}.weight")
        lora[f"text_encoder.{m}.lora_A.weight"] = torch.randn(rank, w.shape[1], generator=g) * 0.05
        lora[f"text_encoder.{m}.lora_B.weight"] = torch.randn(w.shape[0], rank, generator=g) * 0.05
    norm_name = f"text_encoder.{live_module('text_model.' + NORM, pipe.text_encoder)}"
    norm = {f"{norm_name}.weight": get_tensor(pipe, f"{norm_name}.weight").detach() + 0.1 * (seed + 1),
            f"{norm_name}.bias": get_tensor(pipe, f"{norm_name}.bias").detach() - 0.05}
    return LoraAdapter.from_training(pipe, lora, {"r": rank, "lora_alpha": 2 * rank, "target_modules": modules},
                                     norm, method="lora_ti", concepts=[concept], hyperparameters={}, wall_time_s=0.0)


def entry(ticket: str) -> ReleaseEntry:
    return ReleaseEntry(ticket, ticket.lower(), "object", "1", "0" * 64, "lora_ti")


@pytest.fixture(scope="module")
def release(pipe):
    return compose(pipe, [entry("A"), entry("B")], [adapter(pipe, "circle", 4, 0), adapter(pipe, "square", 3, 1)])


def fused_text_encoder(pipe_factory, load) -> dict:
    fresh = pipe_factory()
    load(fresh)
    fresh.fuse_lora()
    fresh.unload_lora_weights()
    return fresh


def test_the_release_s_lora_reproduces_its_text_encoder_in_diffusers_and_kohya_format(pipe, release, tmp_path,
                                                                                     fresh_toy_pipeline):
    lora = release_lora(release, pipe)
    assert lora.rank == 7 and lora.max_error < 1e-6  # two merged LoRAs of rank 4 and 3: rank 7, exactly
    files = write_lora_files(lora, tmp_path)
    assert files == ["pytorch_lora_weights.safetensors", NORM_FILE, KOHYA_FILE]
    linear = {n: v for n, v in release.tensors.items() if "norm" not in n}
    assert len(linear) == 6

    def check(served):
        for name, value in linear.items():
            assert torch.allclose(get_tensor(served, name).detach(), value, atol=1e-5), name
        base = {n: t.detach().clone() for n, t in served.text_encoder.state_dict().items()}
        changed = {f"text_encoder.{n}" for n, t in base.items()
                   if not torch.equal(t, get_tensor(pipe, f"text_encoder.{n}").detach())}
        assert changed == set(linear)  # the LoRA changes the adapted layers and nothing else

    check(fused_text_encoder(fresh_toy_pipeline, lambda p: p.load_lora_weights(tmp_path)))
    # the norm file: the release's new values, under the names checkpoints use
    norms = load_file(tmp_path / NORM_FILE)
    for key, value in norms.items():
        live = "text_encoder." + live_module(key.removeprefix("text_encoder."), pipe.text_encoder)
        assert torch.equal(value, release.tensors[live].float())

    kohya = load_file(tmp_path / KOHYA_FILE)
    lora_keys = {k: v for k, v in kohya.items() if not k.endswith(("w_norm", "b_norm"))}
    assert all(k.startswith("lora_te_text_model_encoder_layers_") for k in lora_keys)
    check(fused_text_encoder(fresh_toy_pipeline, lambda p: p.load_lora_weights(dict(lora_keys))))
    # the norm as kohya's w_norm / b_norm: the difference to the base
    norm_module = module_of_kohya(f"lora_te_text_model_{NORM}", pipe.text_encoder)
    for leaf, suffix in (("weight", "w_norm"), ("bias", "b_norm")):
        name = f"text_encoder.{norm_module}.{leaf}"
        diff = kohya[f"lora_te_text_model_{NORM}.{suffix}"]
        assert torch.allclose(get_tensor(pipe, name).detach() + diff, release.tensors[name], atol=1e-6)


def test_every_text_encoder_module_round_trips_through_kohya_s_names(pipe):
    modules = [m for m, _ in pipe.text_encoder.named_modules() if m]
    names = {kohya_name(canonical_module(m, pipe.text_encoder)) for m in modules}
    assert len(names) == len(modules)  # no two modules collide once dots become underscores
    for m in modules:
        assert module_of_kohya(kohya_name(canonical_module(m, pipe.text_encoder)), pipe.text_encoder) == m
    q = next(m for m in modules if m.endswith("layers.0.self_attn.q_proj"))
    assert kohya_name(canonical_module(q, pipe.text_encoder)) == "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    with pytest.raises(KeyError, match="lora_te_text_model_nothing"):
        module_of_kohya("lora_te_text_model_nothing", pipe.text_encoder)


def test_a_dense_change_is_factored_exactly_and_a_unet_change_is_refused_by_name(pipe, release):
    name = f"text_encoder.{linear_modules(pipe)[0]}.weight"
    w = get_tensor(pipe, name).detach()
    dense = WeightDelta.from_changes(pipe, {name: w + 0.01 * torch.randn(w.shape, generator=torch.Generator().manual_seed(3))},
                                     method="te_ascent", concepts=["circle"], hyperparameters={}, wall_time_s=0.0)
    lora = release_lora(dense, pipe)
    assert lora.rank == min(w.shape) and lora.max_error < 1e-6  # full rank, still exact
    k = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    both = WeightDelta.from_changes(pipe, {**release.tensors, k: get_tensor(pipe, k).detach() + 0.01},
                                    method="release", concepts=["circle"], hyperparameters={}, wall_time_s=0.0)
    with pytest.raises(LoraFileRefused, match="to_k.weight: serve the fused diffusers folder"):
        release_lora(both, pipe)
