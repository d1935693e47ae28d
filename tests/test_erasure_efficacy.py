"""Each method erases "circle" from the toy world, keeps the other shapes, and changes only what it claims.

Bar (issue 3): the detector's circle rate on "a {colour} circle" prompts drops to <= 10%, and every
other shape's accuracy on its prompts drops by <= 10 points; method C erases circle and square at
once with the same bar. 8 images per prompt, all four colours, seeded. Settings: configs/toy.yaml.
"""
import re

import pytest
import torch

from components.erasure.tensors import named_tensors
from components.toyworld.fidelity import shape_rates

# Each method at the toy config's full settings, 8 images per caption: minutes each (make test-slow).
pytestmark = pytest.mark.slow

B_MISSES = pytest.mark.xfail(
    reason="method B (pure text-encoder ascent, no retain term by design) misses the retain bar on the toy "
           "world after tuning: at the settings that remove circles, other shapes lose 3-30 points (BENCHMARKS.md)",
    strict=False)

CASES = [
    pytest.param("lora_ti", ("circle",), id="A-lora_ti"),
    pytest.param("te_ascent", ("circle",), id="B-te_ascent", marks=B_MISSES),
    pytest.param("closed_form", ("circle",), id="C-closed_form"),
    pytest.param("closed_form", ("circle", "square"), id="C-closed_form-two-concepts"),
]


@pytest.fixture(scope="module")
def before(toy_world):
    model, detector = toy_world
    return shape_rates(model.pipeline, detector, images_per_caption=8)


@pytest.mark.parametrize("method,concepts", CASES)
def test_erases_the_concepts_and_keeps_the_rest(method, concepts, erasure_results, before, toy_world,
                                                fresh_toy_pipeline):
    _, detector = toy_world
    result = erasure_results(method, concepts)
    pipe = fresh_toy_pipeline()
    result.fuse(pipe)
    after = shape_rates(pipe, detector, images_per_caption=8)
    for shape in after:
        if shape in concepts:
            assert before[shape] >= 0.9 and after[shape] <= 0.10, (shape, before, after)
        else:
            assert before[shape] - after[shape] <= 0.10, (shape, before, after)


@pytest.mark.parametrize("method,concepts", [("lora_ti", ("circle",)), ("te_ascent", ("circle",)),
                                             ("closed_form", ("circle", "square"))])
def test_changes_exactly_the_tensors_it_claims(method, concepts, erasure_results, toy_world, fresh_toy_pipeline):
    model, _ = toy_world
    result = erasure_results(method, concepts)
    # erase() left the pipeline it read from untouched
    fresh = named_tensors(fresh_toy_pipeline())
    assert all(torch.equal(t, fresh[n]) for n, t in named_tensors(model.pipeline).items())

    pipe = fresh_toy_pipeline()
    result.fuse(pipe)
    changed = {n for n, t in named_tensors(pipe).items() if not torch.equal(t, fresh[n])}
    assert changed == set(result.changed_tensors()) and changed
    assert all(re.fullmatch(EXPECTED[method], n) for n in changed), sorted(changed)
    cross_attention = sum(n.endswith("attn2") for n, _ in pipe.unet.named_modules())
    assert len(changed) == {"lora_ti": 12 + 2, "te_ascent": 16 + 8, "closed_form": 2 * cross_attention}[method]


# What each method may touch, written out for the toy world's 4-layer text encoder.
EXPECTED = {
    # A: LoRA on the last 2 layers' attention and MLP (weights only), plus the final layer norm
    "lora_ti": r"text_encoder\.(encoder\.layers\.[23]\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight"
               r"|final_layer_norm\.(weight|bias))",
    # B: every MLP, plus the last layer's attention (weights and biases)
    "te_ascent": r"text_encoder\.encoder\.layers\.(\d\.mlp\.fc[12]|3\.self_attn\.(q|k|v|out)_proj)\.(weight|bias)",
    # C: cross-attention keys and values of the U-Net
    "closed_form": r"unet\..*\.attn2\.to_[kv]\.weight",
}
