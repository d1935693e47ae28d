"""The release's parts on their own (fast): composition, the record, the plan, the per-concept decision, and the
registry's compare-and-set and lock on a real sqlite MLflow store."""
import time

import pytest
import torch

from components.erasure.tensors import BaseMismatchError, get_tensor
from components.erasure.weight_delta import WeightDelta
from components.release.composition import CompositionError, compose, weights_sha256
from components.release.record import ReleaseEntry, ReleaseRecord

K = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
V = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight"
NORM = "text_encoder.final_layer_norm.weight"


def entry(ticket: str, version: str, method: str = "te_ascent") -> ReleaseEntry:
    return ReleaseEntry(ticket, ticket.lower(), "object", version, "0" * 64, method)


def delta(pipe, changes: dict, concept: str) -> WeightDelta:
    values = {n: get_tensor(pipe, n).detach().clone() + d for n, d in changes.items()}
    return WeightDelta.from_changes(pipe, values, method="te_ascent", concepts=[concept], hyperparameters={},
                                    wall_time_s=0.0)


@pytest.fixture(scope="module")
def pipe(toy_world):
    return toy_world[0].pipeline


def test_one_takedown_composes_to_exactly_its_values_and_two_add_their_differences(pipe):
    k = get_tensor(pipe, K).detach().clone()
    a = delta(pipe, {K: torch.full_like(k, 0.01)}, "circle")
    b = delta(pipe, {K: torch.full_like(k, -0.03), V: torch.ones_like(get_tensor(pipe, V)) * 0.02}, "square")
    alone = compose(pipe, [entry("A", "1")], [a])
    assert torch.equal(alone.tensors[K], a.tensors[K]) and alone.concepts == ["circle"]
    both = compose(pipe, [entry("A", "1"), entry("B", "2")], [a, b])
    assert sorted(both.tensors) == sorted([K, V]) and both.concepts == ["circle", "square"]
    assert torch.allclose(both.tensors[K], k - 0.02, atol=1e-6)
    assert torch.equal(both.tensors[V], b.tensors[V])  # changed by one takedown only: its value, exactly
    assert torch.equal(get_tensor(pipe, K), k)  # the base is left as it was


def test_the_weights_hash_is_reproducible_and_sees_every_change(pipe):
    k = get_tensor(pipe, K).detach()
    a = delta(pipe, {K: torch.full_like(k, 0.01)}, "circle")
    b = delta(pipe, {K: torch.full_like(k, 0.02)}, "circle")
    first = weights_sha256(compose(pipe, [entry("A", "1")], [a]), "base")
    assert first == weights_sha256(compose(pipe, [entry("A", "1")], [a]), "base")
    assert first != weights_sha256(compose(pipe, [entry("A", "1")], [b]), "base")
    assert first != weights_sha256(compose(pipe, [entry("A", "1")], [a]), "another base")


def test_composition_refuses_a_wrong_base_a_method_mismatch_and_non_finite_weights(pipe, fresh_toy_pipeline):
    other = fresh_toy_pipeline()
    with torch.no_grad():
        get_tensor(other, K).add_(1.0)
    foreign = delta(other, {K: torch.zeros_like(get_tensor(other, K)) + 0.1}, "circle")
    with pytest.raises(BaseMismatchError):
        compose(pipe, [entry("A", "1")], [foreign])
    good = delta(pipe, {K: torch.full_like(get_tensor(pipe, K), 0.01)}, "circle")
    with pytest.raises(CompositionError, match="method 'lora_ti'"):
        compose(pipe, [entry("A", "1", method="lora_ti")], [good])
    huge = delta(pipe, {K: torch.full_like(get_tensor(pipe, K), 3e38)}, "circle")
    with pytest.raises(CompositionError, match="non-finite"):
        compose(pipe, [entry("A", "1"), entry("B", "2")], [huge, huge])


@pytest.fixture(scope="module")
def closed_form_takedowns(pipe, toy_config):
    """Method C on circle and on square, each on its own, at the toy config's settings."""
    from components.erasure.methods import erase
    from components.erasure.request import Concept, ErasureRequest
    from components.evaluation.prompt_sets import with_prompt_sets

    out = {}
    for shape in ("circle", "square"):
        request = with_prompt_sets(ErasureRequest([Concept(shape)], seed=0), toy_config.evaluation)
        out[shape] = erase(pipe, request, toy_config.erasure.model_copy(update={"method": "closed_form"}))
    return out


def test_closed_form_takedowns_are_solved_jointly_reproducibly_and_only_with_one_setting(pipe, closed_form_takedowns):
    from components.release.composition import joint_closed_form

    circle, square = closed_form_takedowns["circle"], closed_form_takedowns["square"]
    entries = [entry("C-1", "1", "closed_form"), entry("C-2", "2", "closed_form")]
    release = compose(pipe, entries, [circle, square])
    assert release.hyperparameters["closed_form"] == "joint solve" and release.concepts == ["circle", "square"]
    joint = joint_closed_form(pipe, entries, [circle, square])
    assert joint.concepts == ["circle", "square"]
    # the solve keeps nothing that names a concept of the release: square's preserve set named circle
    assert any("circle" in p for p in square.hyperparameters["preserve_prompts"])
    assert not any("circle" in p or "square" in p for p in joint.hyperparameters["preserve_prompts"])
    merged = {n: get_tensor(pipe, n).detach() + (circle.tensors[n] - get_tensor(pipe, n).detach())
              + (square.tensors[n] - get_tensor(pipe, n).detach()) for n in circle.tensors}
    assert any(not torch.allclose(release.tensors[n], merged[n]) for n in merged)  # not the sum of the two edits
    assert weights_sha256(release, "b") == weights_sha256(compose(pipe, entries, [circle, square]), "b")
    other = WeightDelta(**{**square.__dict__, "hyperparameters": {**square.hyperparameters, "lamb": 0.9}})
    with pytest.raises(CompositionError, match="other settings \\(lamb\\)"):
        compose(pipe, entries, [circle, other])


def test_a_text_encoder_change_and_a_unet_change_compose(pipe, fresh_toy_pipeline):
    norm = delta(pipe, {NORM: torch.full_like(get_tensor(pipe, NORM), 0.5)}, "circle")
    unet = delta(pipe, {K: torch.full_like(get_tensor(pipe, K), 0.01)}, "square")
    release = compose(pipe, [entry("A", "1"), entry("B", "2")], [norm, unet])
    served = release.fused_copy(pipe)
    assert torch.equal(get_tensor(served, NORM), norm.tensors[NORM]) and torch.equal(get_tensor(served, K), unet.tensors[K])


def test_the_record_round_trips_and_refuses_a_ticket_twice_or_an_unknown_reason(tmp_path):
    record = ReleaseRecord("lethe-toyworld", "b" * 64, (entry("T-1", "1"), entry("T-2", "3")), "takedown", "alice",
                           replaces="4", weights_sha256="c" * 64)
    record.save(tmp_path)
    assert ReleaseRecord.load(tmp_path) == record and record.tickets == ["T-1", "T-2"]
    with pytest.raises(ValueError, match="each ticket once"):
        ReleaseRecord("m", "b", (entry("T-1", "1"), entry("T-1", "2")), "takedown", "alice")
    with pytest.raises(ValueError, match="reason"):
        ReleaseRecord("m", "b", (), "because", "alice")


def test_the_plan_replaces_a_retaken_ticket_drops_a_withdrawn_one_and_refuses_an_unknown_one():
    from components.release.building import ReleaseError, plan_candidate

    previous = ReleaseRecord("m", "b", (entry("T-1", "1"), entry("T-2", "2")), "takedown", "alice")
    plan = plan_candidate(previous, [entry("T-1", "5"), entry("T-3", "4")], ["T-2"])
    assert [(e.ticket_id, e.takedown_version) for e in plan] == [("T-3", "4"), ("T-1", "5")]
    with pytest.raises(ReleaseError, match="'T-9' is not in the production release"):
        plan_candidate(previous, [], ["T-9"])


def test_the_release_decision_names_the_concept_that_came_back():
    from components.config.run_config import Thresholds
    from components.release.verification import release_decision

    per_concept = {"circle": {"forget_detection_rate": 0.6, "forget_detection_rate_ci95_high": 0.7,
                              "forget_worst_rate": 1.0, "forget_worst_rate_ci95_high": 1.0, "worst_prompt": "a circle"},
                   "square": {"forget_detection_rate": 0.0, "forget_detection_rate_ci95_high": 0.04,
                              "forget_worst_rate": 0.0, "forget_worst_rate_ci95_high": 0.3, "worst_prompt": "a square"}}
    thresholds = Thresholds(max_kid=None, max_retain_clip_drop=None, max_retain_accuracy_drop=None,
                            max_retain_worst_drop=None, max_neighbour_accuracy_drop=None, max_neighbour_worst_drop=None)
    decision = release_decision({"attack_success": None}, per_concept, thresholds, attacked=False)
    assert not decision.passed
    assert all(r.startswith("concept 'circle'") for r in decision.reasons) and len(decision.reasons) == 2
    assert any("'a circle'" in r for r in decision.reasons)
    # with no new concept the attack is not gated (and a check says so); with one it is, and unmeasured fails
    assert any(c.metric == "attack_success" and c.passed and "not gated" in c.reason for c in decision.checks)
    attacked = release_decision({"attack_success": None, "attack_control_rate": 1.0}, {"square": per_concept["square"]},
                                thresholds, attacked=True)
    assert attacked.reasons == ["attack_success: not measured (a missing metric fails the gate)"]


@pytest.fixture
def stores(tmp_path):
    from components.registry.model_registry import AdapterRegistry
    from components.registry.release_registry import ReleaseRegistry

    registry = AdapterRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=(tmp_path / "a").as_uri())
    return registry, ReleaseRegistry(registry)


def _register(releases, tmp_path, n: int):
    folder = tmp_path / f"r{n}"
    (folder / "record").mkdir(parents=True)
    (folder / "record" / "lethe_release.json").write_text("{}")
    (folder / "release").mkdir()
    (folder / "release" / "x").write_text("x")
    return releases.register("m-release", {"record": folder / "record", "release": folder / "release"}, {}, {},
                             description="test")


def test_promotion_is_a_compare_and_set_on_production(stores, tmp_path):
    from components.registry.release_registry import ProductionMoved

    _, releases = stores
    first, second, third = (_register(releases, tmp_path, n) for n in range(3))
    releases.promote(first, expected=None, checks=["ok"])
    assert releases.production_version("m-release") == first.version
    with pytest.raises(ProductionMoved):  # built on no production, but one appeared meanwhile
        releases.promote(second, expected=None, checks=["ok"])
    assert releases.production_version("m-release") == first.version
    releases.promote(third, expected=first.version, checks=["ok"])
    assert releases.production_version("m-release") == third.version


def test_the_lock_excludes_a_second_holder_and_a_crashed_holder_s_lock_is_broken(stores, monkeypatch):
    from components.registry import release_registry
    from components.registry.release_registry import LockTimeout

    _, releases = stores
    with releases.lock("m-release", wait_s=5):
        with pytest.raises(LockTimeout):
            with releases.lock("m-release", wait_s=0.5):
                pass
    with releases.lock("m-release", wait_s=1):  # released on exit
        pass
    # a holder that died: its lock stays behind, and is broken once older than the lease
    lock = releases.lock("m-release", wait_s=1)
    lock.__enter__()
    monkeypatch.setattr(release_registry, "LOCK_LEASE_S", 0.2)
    time.sleep(0.3)
    with releases.lock("m-release", wait_s=5):
        pass


def test_release_downloads_are_removed_once_read(stores, tmp_path, monkeypatch):
    """Every release change reads records and weights from the registry: nothing of it may stay on the host's disk."""
    import tempfile

    _, releases = stores
    version = _register(releases, tmp_path, 0).version
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert releases.record_data("m-release", version, "lethe_release.json") == {}
    with releases.downloaded("m-release", version, "release") as folder:
        assert (folder / "x").read_text() == "x" and folder.is_relative_to(scratch)
    assert not folder.exists() and list(scratch.iterdir()) == []


def test_an_approved_takedown_loads_whole_and_leaves_no_download_behind(stores, pipe, tmp_path, monkeypatch):
    import shutil
    import tempfile

    from components.release.building import load_takedown
    from tests.conftest import EXAMPLE_TICKET
    from tests.test_release_lora_file import adapter

    registry, _ = stores
    saved = adapter(pipe, "circle", 4, 0)
    ticket = tmp_path / "ticket"
    ticket.mkdir()
    shutil.copy(EXAMPLE_TICKET, ticket / "ticket.yaml")
    version = registry.register("m", {"adapter": saved.save(tmp_path / "adapter"), "ticket": ticket}, {}, {},
                                run_name="t")
    registry.promote(version, [], ["ok"])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    loaded = load_takedown(registry, "m", version.version)
    assert loaded.entry.ticket_id == "TOY-0001" and loaded.entry.method == "lora_ti"
    assert all(torch.equal(loaded.result.lora[k], v) for k, v in saved.lora.items())  # read whole, in memory
    assert list(scratch.iterdir()) == []
