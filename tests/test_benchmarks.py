"""The SD-scale benchmark entry point, end to end on the scaled-down `tiny` suite: its table and JSON.

Checks the output's form and that every number is there and positive, never how fast anything is.
"""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.step_clock import StepTimes
from conftest import REPO

MEASURED = ["load", "c_1", "c_10", "c_50", "c_100", "ti", "a", "b", "generation"]


def run_benchmark(out, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ZENML_ANALYTICS_OPT_IN": "false"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--suite", "tiny", "--device", "cpu",
                           "--out", str(out), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_benchmark(tmp_path_factory.mktemp("bench") / "tiny.json", "--steps", "2", "--sampling-steps", "2",
                         "--generation-batch", "2", "--warmup", "0", "--repeats", "2")


def test_json_has_every_measurement_with_positive_numbers(tiny_run):
    report, _ = tiny_run
    assert report["suite"] == "tiny" and report["device"] == "cpu" and report["dtype"] == "float32"
    for key in ("torch", "diffusers", "transformers", "peft", "cpu", "torch_threads"):
        assert report["machine"][key]
    rows = {r["name"]: r for r in report["results"]}
    assert list(rows) == MEASURED
    for r in rows.values():
        assert r["seconds"] > 0 and r["measured_seconds"] > 0, r
        assert r["peak_memory_bytes"] > 0 and r["memory_kind"] == "cpu_rss", r
        assert len(r["runs_seconds"]) == r["repeats"] == 2, r
    assert rows["load"]["hash_seconds"] > 0 and rows["load"]["folder_bytes"] > 0
    assert [rows[f"c_{n}"]["concepts"] for n in (1, 10, 50, 100)] == [1, 10, 50, 100]
    assert all(rows[f"c_{n}"]["extrapolated"] is False for n in (1, 10, 50, 100))
    assert rows["a"]["artefact_bytes"] > 0 and rows["b"]["changed_tensors"] > 0
    assert rows["generation"]["images"] == 2 and rows["generation"]["images_per_second"] > 0


def test_step_limited_rows_say_they_were_extrapolated_to_the_config(tiny_run):
    report, _ = tiny_run
    rows = {r["name"]: r for r in report["results"]}
    # configs/toy.yaml: TI 300 steps, A 150, B 15 epochs of 3 batches, 25 sampling steps
    expected = {"ti": (2, 300), "a": (2, 150), "b": (3, 45), "generation": (2, 25)}
    for name, (measured, configured) in expected.items():
        r = rows[name]
        assert (r["measured_steps"], r["config_steps"]) == (measured, configured), r
        assert r["extrapolated"] is True and r["seconds_per_step"] > 0 and r["setup_seconds"] >= 0
        assert r["seconds"] > r["measured_seconds"], r


def test_table_lists_every_measurement(tiny_run):
    _, stdout = tiny_run
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| measurement"))
    rows = lines[header + 2:]
    rows = rows[:next(i for i, line in enumerate(rows) if not line.startswith("|"))]
    names = [line.split("|")[1].strip() for line in rows]
    assert names == MEASURED
    assert any(line.startswith("| ti | ~") for line in lines)  # extrapolated rows are marked
    assert "img/s" in next(line for line in lines if line.startswith("| generation"))
    assert lines[-1].startswith("wrote ")


def test_unet_passes_are_counted_on_the_real_code_paths_and_priced_per_ticket(tiny_run, toy_config):
    report, stdout = tiny_run
    rows = {r["name"]: r for r in report["results"]}
    ti = toy_config.erasure.textual_inversion
    # TI: one forward and one backward per image per step; sampling: guidance doubles the batch
    assert rows["ti"]["unet_passes"] == {"forward": ti.steps * ti.batch_size, "backward": ti.steps * ti.batch_size}
    assert rows["generation"]["unet_passes"] == {"forward": 2 * 2 * toy_config.sampling.steps, "backward": 0}
    assert rows["a"]["unet_passes"]["backward"] > 0

    cost = report["ticket"]
    assert cost["method"] == toy_config.erasure.method == "lora_ti"
    work = cost["workload"]
    assert work["images_cold"] == work["images_warm"] + work["set_images"] > work["images_warm"] > 0
    stages = cost["stages"]
    assert cost["gpu_seconds_warm"] == pytest.approx(sum(stages[s]["seconds"] for s in ("ti", "erasure", "evaluation_warm")))
    per_image = stages["evaluation_cold"]["seconds"] - stages["evaluation_warm"]["seconds"]
    assert per_image == pytest.approx(work["set_images"] * rows["generation"]["seconds"] / 2)
    assert stages["evaluation_warm"]["unet_passes"]["backward"] == \
        (work["attack_ti_runs"] + work["control_ti_runs"]) * work["attack_ti_steps"] * ti.batch_size
    assert "| total, warm cache |" in stdout


def test_autocast_and_checkpointing_flags_run_the_training_methods(tmp_path):
    report, _ = run_benchmark(tmp_path / "flags.json", "--only", "ti", "a", "--steps", "1", "--autocast", "bf16",
                              "--gradient-checkpointing", "--warmup", "1", "--repeats", "1")
    assert report["autocast"] == "bf16" and report["gradient_checkpointing"] is True
    assert [r["name"] for r in report["results"]] == ["ti", "a"]
    assert all(r["seconds"] > 0 and r["measured_steps"] == 1 for r in report["results"])


def test_estimate_separates_setup_from_steps_and_keeps_the_tail():
    # setup 5 s, then 3 steps of 2 s, then 1 s after the last step
    times = StepTimes(start=0.0, steps=[7.0, 9.0, 11.0], end=12.0)
    assert times.split() == (5.0, 2.0, 1.0)
    assert times.estimate_s(3) == 12.0  # as measured
    assert times.estimate_s(100) == 5.0 + 100 * 2.0 + 1.0
