"""A new takedown is trained on top of the production release (fast): it starts from production's weights, its
targets are production's, and what it stores is still a change over the base that a release adds up."""
import pytest
import torch

from components.erasure.starting_point import StartingPoint
from components.erasure.tensors import get_tensor
from components.erasure.weight_delta import WeightDelta
from components.release.composition import compose, weights_sha256
from components.release.record import ReleaseEntry, ReleaseRecord

NORM = "text_encoder.final_layer_norm.weight"


@pytest.fixture(scope="module")
def pipe(toy_world):
    return toy_world[0].pipeline


def production_change(pipe) -> WeightDelta:
    """A stand-in for production's weights: a change to the final norm and the last layer's queries (both in the
    layers method A adapts), large enough to change what the model predicts."""
    from components.erasure.text_encoder_parts import last_layers, layer_modules

    (last,) = layer_modules(pipe.text_encoder, last_layers(pipe.text_encoder, 1), ("self_attn.q_proj",))
    q = f"text_encoder.{last}.weight"
    values = {NORM: get_tensor(pipe, NORM).detach().clone() * 1.5, q: get_tensor(pipe, q).detach().clone() * 0.5}
    return WeightDelta.from_changes(pipe, values, method="release", concepts=["square"], hyperparameters={},
                                    wall_time_s=0.0)


def test_a_takedown_on_top_of_production_trains_from_it_and_stays_a_change_over_the_base(
        pipe, toy_config, circle_images, circle_token):
    from components.erasure.methods import erase
    from components.erasure.request import Concept, ErasureRequest

    # one step at a negligible rate: what is checked is where training starts and what is stored, not the erasure
    lora_ti = toy_config.erasure.lora_ti.model_copy(update={
        "steps": 1, "learning_rate": 1e-12, "adversary": toy_config.erasure.lora_ti.adversary.model_copy(update={"tokens": 0})})
    config = toy_config.erasure.model_copy(update={"lora_ti": lora_ti})
    request = ErasureRequest([Concept("circle")], images=circle_images, retain_prompts=["a red square", "a blue cross"],
                             seed=0, learned_token=circle_token)
    change = production_change(pipe)
    label = {"release": "7", "tickets": ["T-SQUARE"], "weights_sha256": "f" * 64}
    base_norm = get_tensor(pipe, NORM).detach().clone()

    on_base = erase(pipe, request, config)
    on_top = erase(pipe, request, config, start=StartingPoint(change, label))

    assert on_base.hyperparameters["trained_on"] == {"release": "none: the base model"}
    assert on_top.hyperparameters["trained_on"] == label  # in the takedown's lineage
    # the encoder it trained and the targets it kept are one model (production's): the retain loss starts at zero
    assert on_top.history[0]["retain"] < 1e-10 and on_base.history[0]["retain"] < 1e-10
    # ...and that model is production, not the base: the same step on the same noise sees other predictions
    assert abs(on_top.history[0]["name_denoise"] - on_base.history[0]["name_denoise"]) > 1e-4
    # stored as a change over the base: the norm it kept (production's, untouched) is the base's, not production's
    assert torch.allclose(on_top.norm[NORM], base_norm, atol=1e-6)
    assert sorted(on_top.base) == sorted(on_base.base)  # fingerprints of the base's tensors: it composes on the base
    # so the release that adds it (production's change + its own) is the model it was trained on
    release = compose(pipe, [ReleaseEntry("T-SQUARE", "square", "object", "1", "0" * 64, "release"),
                             ReleaseEntry("T-CIRCLE", "circle", "object", "2", "0" * 64, "lora_ti")], [change, on_top])
    assert torch.allclose(release.tensors[NORM], change.tensors[NORM], atol=1e-6)
    assert torch.equal(get_tensor(pipe, NORM), base_norm)  # the base pipeline was left as it was

    te_ascent = toy_config.erasure.model_copy(update={"method": "te_ascent"})
    with pytest.raises(ValueError, match="'te_ascent' trains on the base model only"):
        erase(pipe, request, te_ascent, start=StartingPoint(change, label))


def test_the_starting_point_is_production_as_registered_and_checked(pipe, tmp_path):
    """What the training step asks for (stages.training_start): None before any release and for methods that train
    on the base; then production's stored weights, checked against its record and the run's base model."""
    from components.registry.model_registry import AdapterRegistry
    from components.registry.release_registry import ReleaseRegistry
    from components.release.building import ReleaseError
    from components.release.training_start import production_start
    from components.takedown.resolved_inputs import resolve_inputs
    from components.takedown.stages import training_start
    from conftest import EXAMPLE_TICKET, toy_config_file

    inputs = resolve_inputs(EXAMPLE_TICKET, toy_config_file(tmp_path, "a"), "key")
    closed_form = resolve_inputs(EXAMPLE_TICKET, toy_config_file(tmp_path, "c", erasure__method="closed_form"), "key")
    name, base = inputs.config().base_model.registry_name, inputs.base.weights_sha256
    registry = AdapterRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=(tmp_path / "a").as_uri())
    releases = ReleaseRegistry(registry)
    assert training_start(inputs, registry) is None  # no production yet: the base model

    def promote(n: int, change: WeightDelta, record_hash: str, expected):
        entries = (ReleaseEntry("T-SQUARE", "square", "object", "1", "0" * 64, "lora_ti"),)
        record = ReleaseRecord(name, base, entries, "takedown", "test", weights_sha256=record_hash)
        folder = tmp_path / f"r{n}"
        record.save(folder / "record")
        version = releases.register(f"{name}-release", {"record": folder / "record",
                                                        "release": change.save(folder / "release")},
                                    {}, {}, description="test")
        releases.promote(version, expected=expected, checks=["ok"])
        return version.version

    change = production_change(pipe)
    first = promote(0, change, weights_sha256(change, base), None)
    start = training_start(inputs, registry)
    assert start.label == {"release": first, "tickets": ["T-SQUARE"], "weights_sha256": weights_sha256(change, base)}
    assert sorted(start.change.tensors) == sorted(change.tensors)
    assert all(torch.equal(start.change.tensors[n], v) for n, v in change.tensors.items())
    assert training_start(closed_form, registry) is None  # C is solved jointly at release time, from the base
    with pytest.raises(ReleaseError, match=f"built on base weights {base[:12]}"):
        production_start(registry, name, "c" * 64)
    promote(1, change, "0" * 64, first)  # a record whose weights hash is not its stored weights'
    with pytest.raises(ReleaseError, match="its stored weights hash to"):
        training_start(inputs, registry)
