"""Names of text-encoder parts, selected by layer index from the end.

By index, not by a string such as "11.": SD 1.5's encoder has 12 layers, SD 2.1's 23, the toy
world's 4; and transformers 4 and 5 name the stack differently ("text_model.encoder.layers" vs
"encoder.layers").
"""
from __future__ import annotations

ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")
MLP = ("mlp.fc1", "mlp.fc2")


def layer_stack(text_encoder) -> tuple[str, int]:
    """The module name of the encoder's layer list and its length."""
    for name, module in text_encoder.named_modules():
        if name.endswith("encoder.layers") or name == "layers":
            return name, len(module)
    raise ValueError("no 'encoder.layers' module in this text encoder; is it a CLIP text model?")


def last_layers(text_encoder, n: int) -> list[int]:
    _, total = layer_stack(text_encoder)
    if not 0 < n <= total:
        raise ValueError(f"asked for the last {n} layers of a {total}-layer text encoder")
    return list(range(total - n, total))


def layer_modules(text_encoder, layers: list[int], parts: tuple[str, ...]) -> list[str]:
    stack, _ = layer_stack(text_encoder)
    return [f"{stack}.{i}.{p}" for i in layers for p in parts]


def final_norm(text_encoder) -> str:
    names = [n for n, _ in text_encoder.named_modules() if n.endswith("final_layer_norm")]
    if len(names) != 1:
        raise ValueError("expected exactly one final_layer_norm in the text encoder")
    return names[0]
