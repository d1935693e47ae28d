"""Method A's substitute anchors: a forget prompt's anchor that is itself a training retain caption ("a circle" for
"a yellow circle", drawn yellow 43% of the time by the toy model) is trained to the original's prediction for the
prompt with another value of the concept's slot, so the erased model stops drawing the concept unasked."""
from components.domain.prompt_terms import names, replaced
from components.erasure.lora_ti import _unasked_anchors
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
    for anchor, substitutes in unasked.items():  # a bare shape -> that shape in each other colour, never yellow
        assert not any(names(anchor, c) for c in ["red", "green", "blue", "yellow"])
        *before, shape = anchor.split()
        assert substitutes == [" ".join([*before, colour, shape]) for colour in ["red", "green", "blue"]]
    # a shape's forget prompts reduce to "a", "a photo of a", "a red": none is a caption of the corpus
    circle = with_prompt_sets(ErasureRequest([Concept("circle")]), ev)
    assert _unasked_anchors(circle.concept_prompts(), ["circle"], circle.kept_prompts(), circle.substitutes) == {}
    assert _unasked_anchors(yellow.concept_prompts(), ["yellow"], yellow.kept_prompts(), []) == {}

