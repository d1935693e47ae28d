"""The evaluation's parts on inputs with known answers: seeded generation, detectors, CLIP scores."""
import numpy as np
import pytest

from components.erasure.request import Concept
from components.evaluation.clip_features import load_clip
from components.evaluation.detectors import ClipZeroShotDetector, CustomDetector, ToyDetector
from components.evaluation.generation import generate, sampling_pipeline
from components.models.loading import ModelLoadError
from components.config.run_config import Sampling
from components.toyworld.shapes import render_shape
from components.toyworld.world import CLIP_DIR, DETECTOR_DIR

FAST = Sampling(steps=5, guidance_scale=5.0)


def rendered(shape: str, colour: str, n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([render_shape(shape, colour, rng) for _ in range(n)])


@pytest.fixture(scope="module")
def clip():
    return load_clip(CLIP_DIR)


def test_each_image_keeps_its_noise_whatever_the_batch_and_prompt_order(toy_world):
    model, _ = toy_world
    a = generate(model.pipeline, ["a red circle", "a blue square"], 3, FAST, seed=0, batch_size=2)
    b = generate(model.pipeline, ["a blue square", "a red circle"], 3, FAST, seed=0, batch_size=6)
    for prompt in a:
        assert a[prompt].shape == (3, 32, 32, 3) and a[prompt].dtype == np.uint8
        # batched matmuls may round differently: at most one level of 255 apart
        assert np.abs(a[prompt].astype(int) - b[prompt]).max() <= 1
    assert np.abs(a["a red circle"][0].astype(int) - a["a red circle"][1]).mean() > 5  # images differ
    c = generate(model.pipeline, ["a red circle"], 3, FAST, seed=1, batch_size=3)
    assert np.abs(a["a red circle"].astype(int) - c["a red circle"]).mean() > 5  # the run seed matters


def test_the_configured_sampler_draws_on_shared_modules_and_leaves_the_model_as_it_was(toy_world):
    model, detector = toy_world
    pipe = model.pipeline
    dpm = FAST.model_copy(update={"scheduler": "dpm_solver_pp", "steps": 12})
    swapped = sampling_pipeline(pipe, dpm)
    assert type(swapped.scheduler).__name__ == "DPMSolverMultistepScheduler" and type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert swapped.unet is pipe.unet and swapped.text_encoder is pipe.text_encoder
    assert swapped.scheduler.config.beta_schedule == pipe.scheduler.config.beta_schedule  # the trained noise schedule
    assert sampling_pipeline(pipe, FAST) is pipe  # the model's own sampler, or one it already has: no copy
    assert sampling_pipeline(pipe, FAST.model_copy(update={"scheduler": "ddim"})) is pipe
    images = generate(pipe, ["a red circle", "a blue square"], 4, dpm, seed=0)
    ddim = generate(pipe, ["a red circle", "a blue square"], 4, FAST.model_copy(update={"steps": 12}), seed=0)
    assert np.abs(images["a red circle"].astype(int) - ddim["a red circle"]).mean() > 1  # another sampler drew them
    for prompt, (colour, shape) in (("a red circle", ("red", "circle")), ("a blue square", ("blue", "square"))):
        found = detector.detect(images[prompt])
        assert sum(d.shape == shape and d.colour == colour for d in found) >= 3, found  # and still draws the prompt


def test_a_small_set_is_drawn_with_more_images_per_prompt_and_keeps_its_first_images(toy_world, toy_config, tmp_path):
    from components.erasure.request import ErasureRequest
    from components.evaluation.image_cache import OriginalImageCache
    from components.evaluation.image_counts import images_per_prompt
    from components.evaluation.prompt_sets import evaluation_sets

    two = evaluation_sets(ErasureRequest([Concept("circle"), Concept("square")]), toy_config.evaluation)
    counts = images_per_prompt(two, 8, 128)
    assert len(two.neighbours) == 8 and {counts[p] for p in two.neighbours} == {16}  # 2 shapes x 4 colours left
    for group in (list(two.forget), two.retain, two.neighbours):
        assert sum(counts[p] for p in group) >= 128 and min(counts[p] for p in group) >= 8
    assert images_per_prompt(two, 8, None) == {p: 8 for p in counts}
    assert all(counts[p] == 8 for p in two.paraphrases if p not in [*two.forget, *two.retain, *two.neighbours])

    model, _ = toy_world
    prompts = {"a red circle": 2, "a blue square": 5}
    drawn = generate(model.pipeline, list(prompts), prompts, FAST, seed=0, batch_size=4)
    assert {p: len(v) for p, v in drawn.items()} == prompts
    three = generate(model.pipeline, ["a red circle"], 3, FAST, seed=0, batch_size=4)["a red circle"]
    assert np.abs(three[:2].astype(int) - drawn["a red circle"]).max() <= 1  # image i is image i whatever the count
    cache = OriginalImageCache(tmp_path, "0" * 64, "cpu", "float32")
    cache.generate(model.pipeline, list(prompts), prompts, FAST, seed=0)
    again = cache.generate(model.pipeline, list(prompts), {"a red circle": 1, "a blue square": 5}, FAST, seed=0)
    assert cache.hits == 6 and cache.misses == 7 and len(again["a red circle"]) == 1


def test_toy_detector_judges_shapes_colours_and_prompts():
    detector = ToyDetector(DETECTOR_DIR)
    circles, squares = rendered("circle", "red"), rendered("square", "blue")
    assert detector.concept_present(circles, Concept("circle")).all()
    assert not detector.concept_present(squares, Concept("circle")).any()
    assert detector.concept_present(circles, Concept("red")).all()
    assert detector.matches_prompt(squares, "a blue square", Concept("circle")).all()
    assert not detector.matches_prompt(squares, "a red square", Concept("circle")).any()  # the colour is wrong
    assert detector.matches_prompt(squares, "a photo of something", Concept("circle")) is None
    with pytest.raises(ValueError, match="not 'dog'"):
        detector.concept_present(circles, Concept("dog"))


def test_clip_score_prefers_the_true_caption(clip):
    squares = rendered("square", "green")
    assert clip.clip_scores(squares, "a green square").mean() > clip.clip_scores(squares, "a red circle").mean() + 20


def test_clip_zero_shot_detector_finds_the_concept_among_alternatives(clip):
    detector = ClipZeroShotDetector(clip, ["a photo of a square", "a photo of a triangle", "a photo of a cross"])
    assert Concept("circle").text == "a photo of a circle"
    assert detector.concept_present(rendered("circle", "yellow"), Concept("circle")).mean() >= 0.9
    assert detector.concept_present(rendered("cross", "yellow"), Concept("circle")).mean() <= 0.1
    assert detector.matches_prompt(rendered("triangle", "red"), "a photo of a triangle", Concept("circle")).mean() >= 0.9


def test_custom_detector_is_the_user_s_python_file(tmp_path):
    file = tmp_path / "redness.py"
    file.write_text("import numpy as np\n"
                    "def concept_present(images, name, kind):\n"
                    "    return images[..., 0].mean(axis=(1, 2)) > images[..., 2].mean(axis=(1, 2)) + 20\n")
    detector = CustomDetector(file)
    assert detector.concept_present(rendered("square", "red", 4), Concept("red", "style")).all()
    assert not detector.concept_present(rendered("square", "blue", 4), Concept("red", "style")).any()
    assert detector.matches_prompt(rendered("square", "red", 4), "a red square", Concept("red")) is None

    (tmp_path / "wrong.py").write_text("def concept_present(images, name, kind):\n    return [True]\n")
    with pytest.raises(ValueError, match="returned 1 values for 4 images"):
        CustomDetector(tmp_path / "wrong.py").concept_present(rendered("square", "red", 4), Concept("red"))
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ModelLoadError, match="must define concept_present"):
        CustomDetector(tmp_path / "empty.py")
    with pytest.raises(ModelLoadError, match="not found"):
        CustomDetector(tmp_path / "missing.py")


def test_clip_folder_must_be_given_and_be_a_clip_model(tmp_path):
    with pytest.raises(ModelLoadError, match="clip_model is not set"):
        load_clip(None)
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_clip(tmp_path)
