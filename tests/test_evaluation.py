"""Evaluation on the toy world: metrics on cases with known answers, and the recovery attack.

Small but real: 4 images per prompt, the toy config's sampler, the shipped CLIP and detector.
"""
import numpy as np
import pytest

from components.erasure.request import Concept, ErasureRequest
from components.evaluation.decision import decide
from components.evaluation.evaluate import evaluate, evaluate_result
from components.evaluation.prompt_sets import evaluation_sets
from components.evaluation.workload import evaluation_workload
from components.config.run_config import AttackRestart, RecoveryAttack

RETAIN = ["a blue square", "a green triangle", "a yellow cross"]


@pytest.fixture(scope="module")
def small_config(toy_config):
    """No vocabulary (so no corpus, no neighbours): just these prompts, to keep the tests cheap."""
    ev = toy_config.evaluation.model_copy(update={
        "images_per_prompt": 4, "min_images_per_set": None, "vocabulary": None, "sequential": None,
        "forget_templates": {"object": ["a {concept}", "a red {concept}"]},
        "retain_prompts": RETAIN, "paraphrases": {"circle": ["a round shape"]},
        "attack": RecoveryAttack(steps=150, restarts=[AttackRestart()], templates=["a {concept}", "a red {concept}"])})
    return toy_config.model_copy(update={"evaluation": ev})


@pytest.fixture(scope="module")
def judges(toy_config):
    from components.evaluation.clip_features import load_clip
    from components.evaluation.detectors import load_detector

    clip = load_clip(toy_config.evaluation.clip_model)
    return clip, load_detector(toy_config.evaluation.detector, clip)


@pytest.fixture(scope="module")
def evaluated(toy_world, small_config, erasure_results, circle_images):
    """Method C's circle erasure, evaluated with the attack run on both the erased and the original model."""
    model, _ = toy_world
    request = ErasureRequest([Concept("circle")], images=circle_images, seed=0)
    return evaluate_result(model, erasure_results("closed_form"), request, small_config)


def test_forget_prompts_are_the_templates_for_each_concept_then_the_request_s_own(small_config):
    request = ErasureRequest([Concept("circle"), Concept("square")], forget_prompts=["a red circle", "a photo of a ball"])
    targets = evaluation_sets(request, small_config.evaluation).forget
    assert list(targets) == ["a circle", "a red circle", "a square", "a red square", "a photo of a ball"]
    assert [c.name for c in targets["a square"]] == ["square"]
    assert [c.name for c in targets["a red circle"]] == ["circle"]  # a template already named it
    assert [c.name for c in targets["a photo of a ball"]] == ["circle", "square"]


def test_an_erased_model_forgets_and_keeps_the_rest(evaluated):
    m = evaluated.metrics
    assert m["forget_detection_rate_before"] >= 0.9
    assert m["forget_detection_rate"] <= 0.1
    assert m["forget_detection_rate_ci95_high"] == pytest.approx(3.8415 / (8 + 3.8415), abs=1e-3)  # 0 of 8
    assert m["forget_worst_rate"] <= 0.25
    assert m["forget_clip_score"] < m["forget_clip_score_before"] - 20  # CLIP agrees: the images stopped being circles
    assert m["retain_accuracy_before"] >= 0.9 and m["retain_accuracy_drop"] <= 0.1
    assert m["retain_accuracy_drop_ci95_high"] > m["retain_accuracy_drop"]  # 12 images cannot prove a small drop
    assert abs(m["retain_clip_drop"]) < 0.03
    assert m["kid"] < 0.05
    assert m["fid"] is None  # 12 images per side: far below FID_MIN_SAMPLES
    by_prompt = {r.prompt: r for r in evaluated.prompts}
    assert [r.group for r in evaluated.prompts].count("retain") == len(RETAIN)
    assert by_prompt["a red circle"].after["rate"] <= 0.25
    assert by_prompt["a red circle"].images_before.shape == (4, 32, 32, 3)
    assert by_prompt["a red circle"].flags_after.dtype == bool
    # what the erased model draws instead of circles, as the detector sees it, for every forget image
    assert sum(by_prompt["a red circle"].draws_instead.values()) == 4
    assert sum(evaluated.info["forget_draws_instead"].values()) == 8
    assert 0 <= m["collapse_rate"] <= 1 and m["collapse_rate_before"] == 0.0


def test_the_recovery_attack_finds_the_concept_in_the_original_model(evaluated):
    m = evaluated.metrics
    # The control: TI with the ticket's images, against the ORIGINAL model, brings circles back.
    assert m["attack_control_rate"] >= 0.9
    # Against the erased model the same attack is measured and reported, whatever it finds.
    assert 0.0 <= m["attack_token_rate"] <= 1.0
    assert m["attack_success"] in (m["attack_token_rate"], m["attack_paraphrase_rate"])
    assert m["attack_success_ci95_high"] == max(m["attack_token_rate_ci95_high"], m["attack_paraphrase_rate_ci95_high"])
    tokens = [r for r in evaluated.prompts if r.group == "token"]
    assert [r.prompt for r in tokens] == ["a <recovered>", "a red <recovered>"]
    assert all(r.images_before is not None and len(r.images_after) == 4 for r in tokens)
    assert evaluated.attack_token.token == "<recovered>" and evaluated.attack_token.hyperparameters["steps"] == 150


def test_a_control_that_misses_runs_the_next_restart_on_the_original_and_the_strongest_counts(
        toy_world, small_config, judges, circle_images, circle_token):
    from components.erasure.textual_inversion import LearnedToken

    model, _ = toy_world
    clip, detector = judges
    attack = small_config.evaluation.attack.model_copy(update={"restarts": [AttackRestart(), AttackRestart(seed_offset=1)]})
    config = small_config.model_copy(update={"evaluation": small_config.evaluation.model_copy(update={"attack": attack})})

    def controls(learned_token):
        request = ErasureRequest([Concept("circle")], images=circle_images, seed=0, learned_token=learned_token)
        result = evaluate(model.pipeline, model.pipeline, request, config, clip, detector)
        runs: dict[int, list] = {}
        for r in result.prompts:
            if r.group == "token":
                runs.setdefault(r.attack_run, []).append(r.flags_before)
        return result, [None if any(f is None for f in flags) else float(np.concatenate(flags).mean())
                        for flags in runs.values()]

    # method A's token for circle finds circles on the original: the second restart is not run there
    found, rates = controls(circle_token)
    assert rates[0] >= 0.9 and rates[1] is None
    assert found.metrics["attack_control_rate"] == rates[0]
    # a "learned" token that is the word square: its control misses, so restart 2's TI runs on the original too
    tokenizer, table = model.pipeline.tokenizer, model.pipeline.text_encoder.get_input_embeddings().weight
    square = table[tokenizer("square", add_special_tokens=False).input_ids[0]].detach().clone().reshape(1, -1)
    missed, rates = controls(LearnedToken("<concept>", square, "circle", {}, 0.0))
    assert rates[0] <= 0.1 and rates[1] is not None and rates[1] > rates[0]
    assert missed.metrics["attack_control_rate"] == rates[1]  # the attack's strongest restart on the original
    assert any("strongest counts" in n for n in missed.info["notes"])


def test_the_control_is_each_concept_s_strongest_restart_and_the_weakest_concept_s():
    from components.evaluation.evaluate import PromptResult, _control_rate

    def run(k, concept, found):
        return PromptResult("token", "a <recovered>", "concept rate", {}, {}, attack_run=k, attack_concept=concept,
                            flags_before=None if found is None else np.array([True] * found + [False] * (4 - found)),
                            flags_after=np.zeros(4, bool))

    # circle: restarts at 1/4 and 4/4 (strongest 100%); square: 3/4, its second restart not run on the original
    assert _control_rate([run(0, "circle", 1), run(1, "circle", 4), run(2, "square", 3), run(3, "square", None)]) == 0.75
    assert _control_rate([run(0, "circle", None)]) is None


def test_identical_models_change_nothing_and_an_unmeasured_attack_fails_the_gate(toy_world, small_config, judges):
    model, _ = toy_world
    clip, detector = judges
    request = ErasureRequest([Concept("circle")], seed=0)  # no images: the TI attack cannot run
    result = evaluate(model.pipeline, model.pipeline, request, small_config, clip, detector)
    m = result.metrics
    assert m["forget_detection_rate"] == m["forget_detection_rate_before"] >= 0.9
    assert m["retain_clip_drop"] == 0.0 and m["retain_accuracy_drop"] == 0.0 and m["retain_worst_drop"] == 0.0
    assert abs(m["kid"]) < 1e-9  # the same images on both sides
    assert m["attack_token_rate"] is None and m["attack_success"] is None and m["attack_control_rate"] is None
    assert any("recovery attack by TI not run" in n for n in result.info["notes"])
    assert any("no near neighbours" in n for n in result.info["notes"])
    decision = decide(m, small_config.thresholds)
    assert not decision.passed  # nothing was erased, and the attack was not measured
    failed = {c.metric for c in decision.checks if not c.passed}
    assert {"forget_detection_rate", "forget_worst_rate", "attack_success", "attack_control_rate",
            "neighbour_accuracy_drop"} <= failed
    # unchanged retain images, but 12 of them: the drop's pessimistic end (1 - 0.757) is above the 10% bar
    assert "retain_accuracy_drop" in failed and m["retain_accuracy_drop_ci95_high"] == pytest.approx(0.2425, abs=1e-3)
    assert "attack_success: not measured (a missing metric fails the gate)" in decision.reasons


@pytest.mark.slow
def test_a_harmful_adapter_that_also_wipes_out_another_shape_is_rejected_by_the_worst_drop(
        toy_world, small_config, erasure_results, circle_images):
    """Method C told to erase circle AND cross, judged as a circle ticket: forget is perfect, and with a broad
    retain set the means may still look tolerable, but one retain prompt went from drawn to gone."""
    model, _ = toy_world
    ev = small_config.evaluation.model_copy(update={
        "retain_prompts": ["a blue square", "a green triangle", "a red square", "a yellow triangle", "a green square",
                           "a blue triangle", "a yellow cross"], "paraphrases": {}})
    config = small_config.model_copy(update={"evaluation": ev})
    request = ErasureRequest([Concept("circle")], images=circle_images, seed=0)
    result = evaluate_result(model, erasure_results("closed_form", ("circle", "cross")), request, config)
    m = result.metrics
    decision = decide(m, config.thresholds)
    cross = next(r for r in result.prompts if r.prompt == "a yellow cross")
    assert cross.before["rate"] >= 0.75 and cross.after["rate"] <= 0.25  # wiped out
    assert m["retain_worst_drop"] >= 0.5
    assert not decision.passed
    worst = next(c for c in decision.checks if c.metric == "retain_worst_drop")
    assert not worst.passed and "above the limit 0.5" in worst.reason
    assert result.info["worst_retain_prompt"]["prompt"] == "a yellow cross"


def test_retain_prompts_naming_the_concept_are_removed_and_recorded(small_config, toy_config):
    ev = small_config.evaluation.model_copy(update={"retain_prompts": ["a red circle", "a blue square", "a ring"]})
    request = ErasureRequest([Concept("circle", aliases=("ring",))], retain_prompts=["a photo of a ball"],
                             forget_prompts=["a photo of a ball"])
    sets = evaluation_sets(request, ev)
    assert sets.retain == ["a blue square"] and "a blue square" in sets.training_retain
    assert [(r.prompt, r.source, r.names) for r in sets.removed] == [
        ("a red circle", "config retain_prompts", "circle"), ("a ring", "config retain_prompts", "ring"),
        ("a photo of a ball", "ticket retain_prompts", "a photo of a ball")]
    assert "a ring" in sets.forget and "a red ring" in sets.forget  # aliases fill the forget templates too


def test_the_toy_retain_corpus_is_split_and_never_names_the_concept(toy_config):
    from components.domain.prompt_terms import names

    for concept in ("circle", "square", "triangle", "cross", "red", "green", "blue", "yellow"):
        sets = evaluation_sets(ErasureRequest([Concept(concept)]), toy_config.evaluation)
        assert not any(names(p, concept) for p in [*sets.retain, *sets.training_retain, *sets.neighbours])
        assert set(sets.retain).isdisjoint(sets.training_retain)  # held out: training never sees them
        assert len(sets.retain) >= 10 and len(sets.training_retain) >= 10 and len(sets.neighbours) == 12
        assert len(sets.forget) >= 10 and all(names(p, concept) for p in sets.forget)
        # the split is the same for every ticket: a prompt held out for one is held out for all
        other = evaluation_sets(ErasureRequest([Concept("cross" if concept != "cross" else "circle")]), toy_config.evaluation)
        assert set(sets.retain) & set(other.training_retain) == set()


def test_a_content_split_keeps_a_caption_of_every_toy_pair_in_training(toy_config):
    from components.domain.prompt_terms import names

    ev = toy_config.evaluation
    by_content = ev.model_copy(update={"retain_corpus": ev.retain_corpus.model_copy(update={"split": "by_content"})})
    by_prompt = evaluation_sets(ErasureRequest([Concept("triangle")]), ev.model_copy(
        update={"retain_corpus": ev.retain_corpus.model_copy(update={"split": "by_prompt"})}))
    assert "a green circle" in by_prompt.retain and "a photo of a green circle" in by_prompt.retain  # why it exists
    for concept in ("circle", "square", "triangle", "cross", "red", "green", "blue", "yellow"):
        sets = evaluation_sets(ErasureRequest([Concept(concept)]), by_content)
        assert not any(names(p, concept) for p in [*sets.retain, *sets.training_retain])
        other = evaluation_sets(ErasureRequest([Concept("cross" if concept != "cross" else "circle")]), by_content)
        assert set(sets.retain) & set(other.training_retain) == set()  # the same split for every ticket
        for kept in [*(f"{c} {s}" for c in ev.vocabulary.slots["colour"] for s in ev.vocabulary.slots["shape"]),
                     *ev.vocabulary.slots["shape"]]:
            if names(kept, concept):
                continue
            pair = [f"a {kept}", f"a photo of a {kept}"]
            assert sorted([p in sets.retain for p in pair]) == [False, True], (concept, kept)
            assert sorted([p in sets.training_retain for p in pair]) == [False, True], (concept, kept)


def test_a_corpus_file_is_split_by_prompt_and_content_groups_never_wholly_held_out():
    from components.evaluation.prompt_sets import heldout_part, heldout_score

    lines = [f"caption number {i}" for i in range(400)]
    held = heldout_part({p: ("caption", p) for p in lines}, 0.5)
    assert held == {p for p in lines if heldout_score(p) < 0.5} and 150 < len(held) < 250
    # a group of three at 0.5 holds out two (round(1.5)), the two lowest scores; a group of two at 0.9 still trains one
    trio = sorted(lines[:3], key=heldout_score)
    assert heldout_part({p: "same" for p in trio}, 0.5) == set(trio[:2])
    assert heldout_part({p: "same" for p in trio[:2]}, 0.9) == {trio[0]}
    assert heldout_part({p: "same" for p in trio[:2]}, 0.01) == {trio[0]}  # and holds out one


# --- the report --------------------------------------------------------------------------------------

def _report(evaluated, config, folder):
    from components.evaluation.decision import limits_of
    from components.evaluation.report import write_report

    decision = decide(evaluated.metrics, config.thresholds)
    ids = {"ticket": "TOY-0001", "base weights sha256": "c942fcbb", "method": "closed_form"}
    return decision, write_report(evaluated, decision, ids, folder, title="Lethe erasure report: TOY-0001",
                                  thresholds=limits_of(config.thresholds), images_per_prompt=3)


def test_report_is_one_self_contained_html_whose_images_all_decode(evaluated, small_config, tmp_path):
    import base64
    import io
    import json
    from html.parser import HTMLParser

    from PIL import Image

    decision, files = _report(evaluated, small_config, tmp_path)

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.sources, self.links = [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                self.sources.append(attrs["src"])
            self.links += [v for k, v in attrs.items() if k in ("href", "src") and not v.startswith("data:")]

    page = files.html.read_text()
    parser = Collect()
    parser.feed(page)
    assert parser.links == []  # nothing outside the file: it opens the same in an air-gapped audit
    # 3 shown per side: forget 2, retain 3, paraphrase 1, token 2 prompts, every one drawn by both models
    assert len(parser.sources) == 3 * 2 * (2 + 3 + 1 + 2)
    assert "95% interval" in page and "What was measured" in page
    for src in parser.sources:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.size == (32, 32)
    for text in ("TOY-0001", "c942fcbb", "forget_detection_rate", "attack_success", "a red circle", "a &lt;recovered&gt;"):
        assert text in page
    assert ("PASSED" in page) == decision.passed and ("REJECTED" in page) != decision.passed

    saved = json.loads(files.metrics.read_text())
    assert saved["decision"] == json.loads(json.dumps(decision.as_dict()))
    assert saved["metrics"]["forget_detection_rate"] == pytest.approx(evaluated.metrics["forget_detection_rate"])
    assert saved["thresholds"]["kid"] == small_config.thresholds.max_kid
    grid = Image.open(files.grid)
    assert grid.width > 3 * 96 and grid.height > 16 * 96  # two rows (original, erased) per prompt


def test_report_escapes_ticket_text_and_writes_unmeasured_values_as_null(evaluated, small_config, tmp_path):
    import copy
    import json

    hostile = copy.copy(evaluated)
    hostile.prompts = [copy.copy(evaluated.prompts[0])]
    hostile.prompts[0].prompt = "<script>alert(1)</script>"
    hostile.metrics = {**evaluated.metrics, "kid": float("nan"), "fid": None}
    _, files = _report(hostile, small_config, tmp_path)
    page = files.html.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "not measured" in page
    assert json.loads(files.metrics.read_text())["metrics"]["kid"] is None  # NaN is not JSON; the reasons keep it
    assert "kid: nan is not a finite number" in json.loads(files.metrics.read_text())["decision"]["reasons"]


def test_report_renders_in_headless_chromium(evaluated, small_config, tmp_path):
    import shutil
    import subprocess

    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's package)")
    decision, files = _report(evaluated, small_config, tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,1600", f"--screenshot={shot}", files.html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    banner = (0xE3, 0xF4, 0xE6) if decision.passed else (0xFB, 0xE5, 0xE5)
    assert (pixels == banner).all(1).mean() > 0.005  # the verdict banner is drawn
    assert len(np.unique(pixels, axis=0)) > 500  # and the page shows images, not just text


def test_a_warm_cache_draws_only_the_erased_model_s_images_and_changes_no_metric(
        toy_world, small_config, erasure_results, circle_images, tmp_path):
    model, _ = toy_world
    ev = small_config.evaluation.model_copy(update={
        "images_per_prompt": 2, "attack": RecoveryAttack(steps=10, restarts=[AttackRestart()], templates=["a {concept}"],
                                                         images_per_prompt=3)})
    config = small_config.model_copy(update={"evaluation": ev})
    request = ErasureRequest([Concept("circle")], images=circle_images, seed=0)
    result = erasure_results("closed_form")
    cold = evaluate_result(model, result, request, config, cache_folder=tmp_path / "cache")
    warm = evaluate_result(model, result, request, config, cache_folder=tmp_path / "cache")
    prompts = len({r.prompt for r in cold.prompts if r.group not in ("token",)})
    assert cold.info["original_image_cache"]["images_drawn"] == 2 * prompts
    assert warm.info["original_image_cache"] == {"folder": str(tmp_path / "cache"), "images_read": 2 * prompts,
                                                  "images_drawn": 0}
    assert warm.metrics == cold.metrics
    tokens = [r for r in cold.prompts if r.group == "token"]  # the attack is drawn at its own count, control too
    assert tokens and all(len(r.images_after) == len(r.images_before) == 3 for r in tokens)
    workload = evaluation_workload(request, config)  # the benchmark's cost model counts what was drawn
    assert (workload.images(original_cached=False), workload.images(original_cached=True)) == \
        (cold.info["images_drawn"], warm.info["images_drawn"])
    for a, b in zip(cold.prompts, warm.prompts):
        assert np.array_equal(a.images_before, b.images_before) and np.array_equal(a.images_after, b.images_after)
