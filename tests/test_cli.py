"""The `lethe` command line: exit codes, messages people read, files it writes."""
import json

import yaml
from PIL import Image
from typer.testing import CliRunner

from pipelines.cli import app
from tests.conftest import EXAMPLE_TICKET, REPO, toy_config_file

runner = CliRunner()


def test_check_good_inputs():
    result = runner.invoke(app, ["check", "ticket", str(EXAMPLE_TICKET)])
    assert result.exit_code == 0 and "TOY-0001" in result.output
    result = runner.invoke(app, ["check", "config", str(REPO / "configs" / "toy.yaml")])
    assert result.exit_code == 0 and "toy" in result.output


def test_bad_ticket_exits_2_naming_file_field_and_rule(tmp_path):
    data = yaml.safe_load(EXAMPLE_TICKET.read_text()) | {"kind": "mascot"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["check", "ticket", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: kind: Input should be 'object'" in result.output


def test_bad_config_exits_2_naming_the_key(tmp_path):
    data = yaml.safe_load((REPO / "configs" / "toy.yaml").read_text())
    data["sampling"]["stpes"] = 10
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    for args in (["check", "config", str(bad)], ["generate", "a red circle", "--config", str(bad)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert f"{bad}: sampling.stpes: unknown key" in result.output


def test_missing_model_folder_exits_2(tmp_path):
    data = yaml.safe_load((REPO / "configs" / "toy.yaml").read_text())
    data["base_model"]["path"] = str(tmp_path / "nowhere")
    data["evaluation"]["detector"]["path"] = str(REPO / "assets" / "toyworld" / "detector")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["generate", "a red circle", "--config", str(cfg)])
    assert result.exit_code == 2 and "no such folder" in result.output


def test_generate_writes_a_labelled_strip(tmp_path):
    out = tmp_path / "circle.png"
    result = runner.invoke(app, ["generate", "a red circle", "--n", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "detector:" in result.output
    image = Image.open(out)
    assert image.width > 3 * 96 and image.height >= 96


def test_world_grid_writes_grid_and_detections(tmp_path):
    result = runner.invoke(app, ["world", "grid", "--per-caption", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rates = json.loads((tmp_path / "detections.json").read_text())
    assert len(rates) == 16 and all(0.0 <= r <= 1.0 for r in rates.values())
    Image.open(tmp_path / "grid.png").verify()


def test_schema_export_matches_docs(tmp_path):
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0
    for name in ("ticket.schema.json", "run-config.schema.json", "stack-config.schema.json"):
        assert json.loads((tmp_path / name).read_text()) == json.loads((REPO / "docs" / name).read_text())


def test_world_grid_with_a_non_toy_detector_exits_2():
    result = runner.invoke(app, ["world", "grid", "--config", str(REPO / "configs" / "sd15.yaml")])
    assert result.exit_code == 2
    assert "sd15.yaml: evaluation.detector.kind" in result.output and "'clip_zero_shot'" in result.output


def test_erase_saves_a_loadable_result_for_the_ticket(tmp_path):
    from components.erasure.result_kinds import load_result

    result = runner.invoke(app, ["erase", str(EXAMPLE_TICKET), "--method", "closed_form", "--out", str(tmp_path),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    loaded = load_result(tmp_path / "adapter")
    assert loaded.method == "closed_form" and loaded.concepts == ["circle"]
    assert "TOY-0001" in result.output and "delta.safetensors" in result.output


def test_erase_that_diverges_fails_as_the_pipeline_does_and_saves_nothing(tmp_path):
    # the same setting as the pipeline's divergence test: the invariant lives in erase(), not in a step's glue
    import os
    import subprocess
    import sys

    config = toy_config_file(tmp_path, "diverge", erasure__method="te_ascent", erasure__te_ascent__learning_rate=1e30,
                             erasure__te_ascent__epochs=3)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "erase", str(EXAMPLE_TICKET), "--config", str(config),
                             "--out", str(out), "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "LETHE_HOME": str(tmp_path / "home")})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: TrainingDiverged: te_ascent diverged" in result.stderr
    assert "non-finite values; nothing is saved" in result.stderr
    assert not (out / "adapter").exists()


def test_erase_with_an_unknown_method_exits_2(tmp_path):
    result = runner.invoke(app, ["erase", str(EXAMPLE_TICKET), "--method", "esd", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--method 'esd': choose one of closed_form, lora_ti, te_ascent" in result.output
    assert not any(tmp_path.iterdir())


def test_evaluate_writes_the_report_and_refuses_a_tampered_adapter(tmp_path):
    small = toy_config_file(tmp_path, "small", evaluation__images_per_prompt=2, evaluation__min_images_per_set=None,
                            evaluation__sequential=None,
                            evaluation__vocabulary=None,
                            evaluation__forget_templates={"object": ["a {concept}"]},
                            evaluation__retain_prompts=[], evaluation__paraphrases={},
                            evaluation__attack={"steps": 20, "on_original": False, "restarts": [{"seed_offset": 0}],
                                                "templates": ["a {concept}"]})
    erased = runner.invoke(app, ["erase", str(EXAMPLE_TICKET), "--method", "closed_form", "--out", str(tmp_path / "erase"),
                                 "--config", str(small), "--no-progress"])
    assert erased.exit_code == 0, erased.output

    args = ["evaluate", str(EXAMPLE_TICKET), "--adapter", str(tmp_path / "erase" / "adapter"), "--config", str(small),
            "--out", str(tmp_path / "report"), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["identifiers"]["ticket"] == "TOY-0001" and metrics["identifiers"]["method"] == "closed_form"
    # the ticket's own prompts are evaluated too: its forget prompt and its two retain prompts
    assert {p["prompt"] for p in metrics["prompts"]} >= {"a circle", "a photo of a red circle", "a red square", "a blue triangle"}
    verdict = "PASSED" if metrics["decision"]["passed"] else "REJECTED"
    assert verdict in result.output and "report.html" in result.output
    assert "forget_detection_rate" in result.output and (tmp_path / "report" / "grid.png").is_file()

    delta = tmp_path / "erase" / "adapter" / "delta.safetensors"
    delta.write_bytes(delta.read_bytes()[:-1] + b"\0")
    tampered = runner.invoke(app, args[:-3] + ["--out", str(tmp_path / "again"), "--no-progress"])
    assert tampered.exit_code == 2 and "sha256 differs" in tampered.output
    assert not (tmp_path / "again").exists()


def test_check_ticket_runs_the_image_rules_and_names_each_bad_file(tmp_path):
    import shutil

    for file in EXAMPLE_TICKET.parent.iterdir():
        shutil.copy(file, tmp_path / file.name)
    (tmp_path / "circle_3.png").write_bytes(b"")
    result = runner.invoke(app, ["check", "ticket", str(tmp_path / "ticket.yaml")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'ticket.yaml'}: image circle_3.png: does not decode as an image" in result.output


def test_an_unexpected_error_is_one_line_naming_its_log_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    import sys

    import pytest

    import components.config.run_config as run_config
    from pipelines import cli

    def broken(path):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(run_config, "load_run_config", broken)
    monkeypatch.setenv("LETHE_HOME", str(tmp_path))
    monkeypatch.delenv("LETHE_DEBUG", raising=False)
    monkeypatch.setitem(cli._options, "debug", False)
    command = ["check", "config", str(REPO / "configs" / "toy.yaml")]
    monkeypatch.setattr(sys, "argv", ["lethe", *command])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    (log,) = (tmp_path / "logs").glob("lethe-*.log")
    assert line == (f"error: RuntimeError: disk on fire second line (traceback: {log}); "
                    "run again with --debug to see it here")
    assert "Traceback (most recent call last)" in log.read_text() and "disk on fire" in log.read_text()

    monkeypatch.setenv("LETHE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="disk on fire"):
        cli.main()
    monkeypatch.delenv("LETHE_DEBUG")
    monkeypatch.setattr(sys, "argv", ["lethe", "--debug", *command])
    with pytest.raises(RuntimeError, match="disk on fire"):
        cli.main()
