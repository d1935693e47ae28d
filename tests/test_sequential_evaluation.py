"""Sequential evaluation: the looks' counts, the widened intervals, which prompts are drawn again, and a run
that extends only what is undecided with the same images a one-look evaluation draws."""
import numpy as np
import pytest

from components.config.run_config import SequentialDraw
from components.erasure.request import Concept, ErasureRequest
from components.evaluation.evaluate import PromptResult, evaluate
from components.evaluation.intervals import Z95, wilson
from components.evaluation.prompt_sets import evaluation_sets
from components.evaluation.sequential import look_counts, looks_z, undecided

RETAIN = ["a blue square", "a green triangle", "a yellow cross"]


def test_each_look_is_widened_so_that_all_looks_together_stay_at_95_percent():
    assert looks_z(1) == pytest.approx(Z95)
    # two looks: each at 1 - 0.05 / 2 = 97.5% two-sided, z = Phi^-1(0.99375) = 2.2414 (tables: 2.24)
    assert looks_z(2) == pytest.approx(2.2414, abs=1e-4) and looks_z(3) == pytest.approx(2.3940, abs=1e-4)
    z = looks_z(2)
    # 6 of 6 kept: the drop's upper end 1 - 6 / (6 + z^2) = 0.4557 passes a 50% bar at the first look
    assert 1 - wilson(6, 6, z)[0] == pytest.approx(1 - 6 / (6 + z * z)) == pytest.approx(0.4557, abs=1e-4)
    # 14 of 16 (2 lost): 0.40 passes; 12 of 16 (4 lost): 0.53 does not
    assert 1 - wilson(14, 16, z)[0] == pytest.approx(0.3994, abs=1e-3) and 1 - wilson(12, 16, z)[0] > 0.5


@pytest.mark.parametrize("bad", [[6], [6, 6], [16, 6], [0, 4]])
def test_looks_must_be_two_or_more_increasing_counts(bad):
    with pytest.raises(ValueError):
        SequentialDraw(images_per_prompt=bad)


def test_the_last_look_draws_at_least_the_fixed_design_s_count(toy_config):
    sets = evaluation_sets(ErasureRequest([Concept("circle")]), toy_config.evaluation)
    fixed = look_counts(sets, toy_config.evaluation.model_copy(update={"sequential": None}))
    assert len(fixed) == 1
    ev = toy_config.evaluation.model_copy(update={"sequential": SequentialDraw(images_per_prompt=[6, 12])})
    first, last = look_counts(sets, ev)
    assert set(first) == set(last) == set(fixed[0]) and set(first.values()) == {6}
    assert all(last[p] == max(12, n) for p, n in fixed[0].items()) and max(fixed[0].values()) > 12


def test_the_cost_model_prices_the_first_look_and_the_most_a_sequential_evaluation_draws(toy_config):
    from components.evaluation.workload import evaluation_workload

    request = ErasureRequest([Concept("red")])
    one_look = toy_config.evaluation.model_copy(update={"sequential": None})
    fixed = evaluation_workload(request, toy_config.model_copy(update={"evaluation": one_look}))
    assert fixed.set_images == fixed.set_images_max
    ev = toy_config.evaluation.model_copy(update={"sequential": SequentialDraw(images_per_prompt=[6, 16])})
    looked = evaluation_workload(request, toy_config.model_copy(update={"evaluation": ev}))
    prompts = len(look_counts(evaluation_sets(request, ev), ev)[0])
    assert looked.set_images == 6 * prompts < fixed.set_images < looked.set_images_max == 16 * prompts


def _row(group, prompt, before, after, z):
    from components.evaluation.intervals import rate_with_interval

    fb, fa = np.array(before, dtype=bool), np.array(after, dtype=bool)
    return PromptResult(group, prompt, "accuracy", rate_with_interval(fb, z), rate_with_interval(fa, z),
                        flags_before=fb, flags_after=fa)


def test_only_prompts_whose_checks_are_undecided_are_drawn_again(toy_config):
    z = looks_z(2)
    clean = [_row("retain", f"kept {i}", [1] * 6, [1] * 6, z) for i in range(20)]
    two_lost = _row("retain", "two lost", [1] * 6, [1, 1, 1, 1, 0, 0], z)  # drop 0.33, upper end over 0.5: undecided
    # 1 of 6 kept is not yet decided (the drop's lower end 1 - 0.612 = 0.388); 0 of 6 is (1 - 0.456 = 0.544 > 0.5)
    assert undecided([_row("retain", "half gone", [1] * 6, [1, 0, 0, 0, 0, 0], z)], {}, toy_config.thresholds, z) == (
        {"half gone"}, False)
    gone = _row("retain", "wiped out", [1] * 6, [0] * 6, z)
    metrics = {"retain_accuracy_drop": 0.0, "retain_accuracy_drop_ci95_low": -0.05, "retain_accuracy_drop_ci95_high": 0.05}
    more, failed = undecided([*clean, two_lost], metrics, toy_config.thresholds, z)
    assert more == {"two lost"} and not failed
    # the pooled drop's interval holds its 10% bar: every prompt of the set is drawn again
    holding = {**metrics, "retain_accuracy_drop_ci95_high": 0.12}
    assert undecided([*clean, two_lost], holding, toy_config.thresholds, z)[0] == {r.prompt for r in [*clean, two_lost]}
    # one check decided against its bar: the verdict is REJECTED whatever comes next, nothing more is drawn
    assert undecided([*clean, two_lost, gone], metrics, toy_config.thresholds, z) == (set(), True)
    # a check that is not gated draws nothing
    ungated = toy_config.thresholds.model_copy(update={"max_retain_worst_drop": None})
    assert undecided([*clean, two_lost], metrics, ungated, z) == (set(), False)


@pytest.fixture(scope="module")
def judges(toy_config):
    from components.evaluation.clip_features import load_clip
    from components.evaluation.detectors import load_detector

    clip = load_clip(toy_config.evaluation.clip_model)
    return clip, load_detector(toy_config.evaluation.detector, clip)


@pytest.fixture(scope="module")
def sequential_config(toy_config):
    ev = toy_config.evaluation.model_copy(update={
        "images_per_prompt": 2, "min_images_per_set": None, "vocabulary": None, "paraphrases": {},
        "forget_templates": {"object": ["a {concept}", "a red {concept}"]}, "retain_prompts": RETAIN,
        "sequential": SequentialDraw(images_per_prompt=[2, 4])})
    return toy_config.model_copy(update={"evaluation": ev})


def test_an_undecided_evaluation_draws_the_next_look_and_the_images_a_one_look_run_draws(
        toy_world, sequential_config, erasure_results, judges, tmp_path):
    """Method C's circle erasure: at 2 images a prompt nothing can pass a bar, so every prompt not decided against
    is drawn to 4, images 2 and 3 as a 4-image evaluation draws them; the cache serves the original's first images."""
    from components.evaluation.image_cache import OriginalImageCache

    model, _ = toy_world
    clip, detector = judges
    request = ErasureRequest([Concept("circle")], seed=0)
    erased = erasure_results("closed_form").fused_copy(model.pipeline)
    cache = OriginalImageCache(tmp_path, "0" * 64, "cpu", "float32")
    result = evaluate(model.pipeline, erased, request, sequential_config, clip, detector, original_cache=cache,
                      attack_requests=[])
    looks = result.info["sequential"]["looks"]
    assert [look["images"] for look in looks] == [2 * 5, 2 * looks[1]["prompts"]] and looks[1]["prompts"] >= 3
    assert result.info["interval_z"] == pytest.approx(looks_z(2)) and "the last look" in result.info["sequential"]["stopped"]
    four = sequential_config.evaluation.model_copy(update={"images_per_prompt": 4, "sequential": None})
    one_look = evaluate(model.pipeline, erased, request, sequential_config.model_copy(update={"evaluation": four}),
                        clip, detector, attack_requests=[])
    by_prompt = {r.prompt: r for r in one_look.prompts}
    for r in result.prompts:
        n = len(r.images_after)
        assert n in (2, 4) and len(r.images_before) == n
        assert np.abs(r.images_after.astype(int) - by_prompt[r.prompt].images_after[:n]).max() <= 1
        assert np.abs(r.images_before.astype(int) - by_prompt[r.prompt].images_before[:n]).max() <= 1
    assert cache.misses == sum(look["images"] for look in looks)  # the original's images drawn once each
    from components.evaluation.decision import decide
    from components.evaluation.report import render_html

    page = render_html(result, decide(result.metrics, sequential_config.thresholds), {}, "sequential")
    assert f"look 2: {looks[1]['images']} images of {looks[1]['prompts']} prompts, up to 4 each" in page
    # the widened interval: a rate's upper end at z = 2.24, not 1.96
    forget = next(r for r in result.prompts if r.group == "forget")
    k, n = int(forget.flags_after.sum()), len(forget.flags_after)
    assert forget.after["high"] == pytest.approx(wilson(k, n, looks_z(2))[1])


def test_an_evaluation_that_fails_at_the_first_look_draws_nothing_more(toy_world, sequential_config, judges):
    """The original model against itself: the concept is still drawn, decided at the first look."""
    model, _ = toy_world
    clip, detector = judges
    result = evaluate(model.pipeline, model.pipeline, ErasureRequest([Concept("circle")], seed=0), sequential_config,
                      clip, detector, attack_requests=[])
    assert len(result.info["sequential"]["looks"]) == 1 and "decided against" in result.info["sequential"]["stopped"]
    assert all(len(r.images_after) == 2 for r in result.prompts)


def _token_rows(found_before: int, found_after: int, n: int = 32) -> list[PromptResult]:
    row = _row("token", "a <attack>", [True] * found_before + [False] * (n - found_before),
               [True] * found_after + [False] * (n - found_after), Z95)
    row.attack_run, row.attack_concept = 0, "circle"
    row.images_before = row.images_after = np.zeros((n, 32, 32, 3), dtype=np.uint8)  # counted in images_drawn
    return [row]


def test_the_recovery_attack_alone_decides_a_rejection_when_its_rate_or_its_control_fails(toy_config, judges):
    from components.evaluation.evaluate import _attack_failed

    clip, _ = judges
    assert _attack_failed([], clip, 0, toy_config) is None  # no attack (a release that adds no concept)
    assert _attack_failed(_token_rows(32, 2), clip, 0, toy_config) is None  # 2 of 32: upper end 20% <= 50%
    assert "attack_success" in _attack_failed(_token_rows(32, 12), clip, 0, toy_config)  # 12 of 32: 54% > 50%
    assert "attack_control_rate" in _attack_failed(_token_rows(20, 0), clip, 0, toy_config)  # void: 62% < 90%


def test_a_failed_recovery_attack_stops_the_sets_at_their_first_look(
        toy_world, sequential_config, erasure_results, judges, monkeypatch):
    """Method C's circle erasure is undecided after its first look (the test above draws it on). With an attack that
    found the concept in 30 of 32 images, the verdict is already REJECTED: the sets stop at 2 images a prompt."""
    import components.evaluation.evaluate as evaluation
    from components.evaluation.decision import decide

    model, _ = toy_world
    clip, detector = judges
    attack_runs = []
    monkeypatch.setattr(evaluation, "_token_attack",
                        lambda *args: attack_runs.append(args) or (_token_rows(32, 30), None, []))
    erased = erasure_results("closed_form").fused_copy(model.pipeline)
    result = evaluate(model.pipeline, erased, ErasureRequest([Concept("circle")], seed=0), sequential_config,
                      clip, detector)
    assert len(attack_runs) == 1
    assert len(result.info["sequential"]["looks"]) == 1
    assert "attack_success" in result.info["sequential"]["stopped"]
    assert all(len(r.images_after) == 2 for r in result.prompts if r.group != "token")
    assert "attack_success" in " ".join(decide(result.metrics, sequential_config.thresholds).reasons)
