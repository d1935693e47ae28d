"""Trainable sets are picked by layer index from the end, so SD 1.5 (12 layers) and SD 2.1 (23) both work."""
import pytest
from transformers import CLIPTextConfig, CLIPTextModel

from components.erasure.te_ascent import trainable_modules
from components.erasure.text_encoder_parts import last_layers


def tiny_encoder(layers: int) -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(num_hidden_layers=layers, hidden_size=8, intermediate_size=16,
                                        num_attention_heads=2, vocab_size=50, max_position_embeddings=8))


@pytest.mark.parametrize("layers", [12, 23])
def test_method_b_trains_every_mlp_and_the_last_attention(layers):
    enc = tiny_encoder(layers)
    modules = set(trainable_modules(enc, "mlp-final-attn"))
    last = layers - 1
    projections = ("q_proj", "k_proj", "v_proj", "out_proj")
    assert {m for m in modules if "self_attn" in m} == {f"encoder.layers.{last}.self_attn.{p}" for p in projections}
    assert {m for m in modules if ".mlp." in m} == {f"encoder.layers.{i}.mlp.fc{k}" for i in range(layers) for k in (1, 2)}
    for m in modules:
        enc.get_submodule(m)  # every name resolves to a real module


def test_last_layers_by_index_and_bounds():
    assert last_layers(tiny_encoder(23), 2) == [21, 22]
    with pytest.raises(ValueError, match="last 13 layers of a 12-layer"):
        last_layers(tiny_encoder(12), 13)
