"""Method A's substitute anchors: a forget prompt's anchor that is itself a training retain caption ("a circle" for
"a yellow circle", drawn yellow 43% of the time by the toy model) is trained to the original's prediction for the
prompt with another value of the concept's slot, so the erased model stops drawing the concept unasked. With
`substitute_anchors: leaning` only the anchors that lean to the concept are (the toy model's bare shapes lean to
yellow, to no other colour); the toy default is `never`."""
from dataclasses import replace

import pytest
import torch

from components.domain.prompt_terms import names, replaced
from components.erasure.leaning_anchors import anchor_leanings
from components.erasure.lora_ti import _last_timestep, _unasked_anchors
from components.erasure.methods import erase
from components.erasure.request import Concept, ErasureRequest
from components.evaluation.prompt_sets import evaluation_sets, with_prompt_sets


def test_a_term_is_replaced_as_a_whole_word_and_only_there():
    assert replaced("a photo of a yellow circle", ["yellow"], "red") == "a photo of a red circle"
    assert replaced("a Yellow  circle", ["yellow"], "blue") == "a blue circle"
    assert replaced("a yellowish circle", ["yellow"], "red") == "a yellowish circle"


def test_the_prompt_sets_carry_the_other_values_of_the_concept_s_slot(toy_config):
    ev = toy_config.evaluation
    assert evaluation_sets(ErasureRequest([Concept("yellow")]), ev).substitutes == ["red", "green", "blue"]
    assert evaluation_sets(ErasureRequest([Concept("circle")]), ev).substitutes == ["square", "triangle", "cross"]
    assert with_prompt_sets(ErasureRequest([Concept("green")]), ev).substitutes == ["red", "blue", "yellow"]
    no_vocabulary = ev.model_copy(update={"vocabulary": None, "retain_prompts": ["a red square"]})
    assert evaluation_sets(ErasureRequest([Concept("yellow")]), no_vocabulary).substitutes == []


def test_only_training_retain_captions_that_a_forget_prompt_reduces_to_are_substituted(toy_config):
    ev = toy_config.evaluation
    yellow = with_prompt_sets(ErasureRequest([Concept("yellow")]), ev)
    sets = evaluation_sets(yellow, ev)
    unasked = _unasked_anchors(yellow.concept_prompts(), ["yellow"], yellow.kept_prompts(), yellow.substitutes)
    assert unasked and set(unasked) <= set(sets.training_retain) and not set(unasked) & set(sets.retain)
    for anchor, (prompt, substitutes) in unasked.items():  # a bare shape -> that shape in each other colour
        assert not any(names(anchor, c) for c in ["red", "green", "blue", "yellow"])
        *before, shape = anchor.split()
        assert prompt == " ".join([*before, "yellow", shape]) and prompt in yellow.concept_prompts()
        assert substitutes == [" ".join([*before, colour, shape]) for colour in ["red", "green", "blue"]]
    # a shape's forget prompts reduce to "a", "a photo of a", "a red": none is a caption of the corpus
    circle = with_prompt_sets(ErasureRequest([Concept("circle")]), ev)
    assert _unasked_anchors(circle.concept_prompts(), ["circle"], circle.kept_prompts(), circle.substitutes) == {}
    assert _unasked_anchors(yellow.concept_prompts(), ["yellow"], yellow.kept_prompts(), []) == {}



def _candidates(concept: str, evaluation) -> tuple[ErasureRequest, dict]:
    request = with_prompt_sets(ErasureRequest([Concept(concept)]), evaluation)
    return request, _unasked_anchors(request.concept_prompts(), [concept], request.kept_prompts(), request.substitutes)


def test_the_toy_model_s_bare_shapes_lean_to_yellow_and_to_no_other_colour(toy_world, toy_config):
    model, _ = toy_world
    pipe = model.pipeline
    for colour in ["yellow", "blue"]:
        _, candidates = _candidates(colour, toy_config.evaluation)
        assert candidates
        leanings = anchor_leanings(pipe.unet, pipe.text_encoder, pipe.tokenizer, candidates, _last_timestep(pipe), seed=0)
        assert set(leanings) == set(candidates)
        for anchor, (prompt, substitutes) in candidates.items():
            distances = leanings[anchor]["distances"]
            assert set(distances) == {prompt, *substitutes}
            nearest = min(distances, key=distances.get)
            assert names(nearest, "yellow")  # what the model draws for a bare shape is nearest its yellow version
            assert leanings[anchor]["leans"] == (colour == "yellow")


@pytest.mark.parametrize("concept,same_as", [("blue", "never"), ("yellow", "always")])
def test_leaning_substitutes_exactly_the_anchors_that_lean(toy_world, toy_config, circle_images, circle_token,
                                                           concept, same_as):
    """Blue: no anchor leans, so the adapter is the one without substitution, bit for bit (no extra random draws).
    Yellow: every candidate leans, so it is the one that substitutes them all; the adapter records them."""
    model, _ = toy_world
    request, candidates = _candidates(concept, toy_config.evaluation)
    request = replace(request, images=circle_images, learned_token=circle_token)  # the token's meaning is not read
    results = {}
    for mode in ("leaning", same_as):
        block = toy_config.erasure.lora_ti.model_copy(update={"steps": 2, "substitute_anchors": mode})
        config = toy_config.erasure.model_copy(update={"method": "lora_ti", "lora_ti": block})
        results[mode] = erase(model.pipeline, request, config)
    leaning, other = results["leaning"], results[same_as]
    assert leaning.lora.keys() == other.lora.keys()
    assert all(torch.equal(leaning.lora[k], other.lora[k]) for k in leaning.lora)
    assert all(torch.equal(leaning.norm[k], other.norm[k]) for k in leaning.norm)
    substituted = leaning.hyperparameters["substituted_anchors"]
    assert substituted == (list(candidates) if concept == "yellow" else [])
    assert set(leaning.hyperparameters["anchor_leanings"]) == set(candidates)


def test_configs_that_said_true_or_false_read_as_always_or_never():
    from components.config.run_config import LoraTIParams

    assert LoraTIParams(substitute_anchors=True).substitute_anchors == "always"
    assert LoraTIParams(substitute_anchors=False).substitute_anchors == "never"
    assert LoraTIParams().substitute_anchors == "never"
    with pytest.raises(ValueError):
        LoraTIParams(substitute_anchors="sometimes")
