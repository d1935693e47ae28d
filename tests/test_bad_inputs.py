"""Every case of the bad-input corpus (tests/bad_inputs.py) at every door, with exit code 2 and one line
naming the file, the field or image, and the rule:
- `lethe check ticket`;
- `lethe submit`, which copies nothing;
- `lethe takedown`, which stops before its pipeline starts: no run, no registry (not even its database);
- the sweep, which records the bad ticket and goes on with the good one.
"""
import shutil

import pytest
from typer.testing import CliRunner

from components.takedown import stages, sweep
from components.takedown.batch import advance
from pipelines.cli import app
from tests.bad_inputs import ALL_CASES, EXAMPLE, TOY_CONFIG, build

runner = CliRunner()


def refusal_line(output: str, ticket, expected: str) -> str | None:
    return next((line for line in output.splitlines() if line.startswith(f"{ticket}: ") and expected in line), None)


def test_the_corpus_has_every_kind_of_the_issue_and_more_than_40_cases():
    assert len(ALL_CASES) >= 40
    for kind in ("not UTF-8", "NUL byte in an image path", "line break in the concept", "ticket_id given twice",
                 "target model of another config", "created_at in the future", "uniform colour", "fully transparent",
                 "pure noise", "animated PNG", "aspect ratio 500:1", "image is a FIFO", "image is a folder",
                 "concept the toy detector cannot judge"):
        assert kind in ALL_CASES


@pytest.mark.parametrize("case", ALL_CASES)
def test_every_door_refuses_it_with_exit_2_and_registers_nothing(case, tmp_path, monkeypatch):
    ticket, config, expected = build(case, tmp_path / "case")
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("LETHE_HOME", str(home))
    doors = {"check": ["check", "ticket", str(ticket), "--config", str(config)],
             "submit": ["submit", str(ticket), "--inbox", str(inbox), "--config", str(config)],
             "takedown": ["takedown", str(ticket), "--config", str(config)]}
    for door, args in doors.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (door, result.output)
        assert refusal_line(result.output, ticket, expected), (door, expected, result.output)
        assert "Traceback" not in result.output
    assert not list(inbox.iterdir())  # submit copied nothing
    assert not (home / "mlflow.db").exists() and not (home / "zenml").exists()  # takedown never reached its stack


class NothingRegistered:
    def find_versions(self, name, **tags):
        return []


def test_a_sweep_records_each_bad_ticket_and_goes_on_with_the_good_one(tmp_path):
    """Through the sweep's own stages (load, then validate: what its pipeline steps call), with the toy config;
    the cases made for other configs are left out, and so is a folder named ticket.yaml (a sweep looks into it)."""
    inbox = tmp_path / "inbox"
    expected = {}
    for i, case in enumerate(ALL_CASES):
        ticket, config, rule = build(case, inbox / f"{i:02d}")
        if config != TOY_CONFIG or case == "ticket is a folder":
            shutil.rmtree(inbox / f"{i:02d}")
            continue
        expected[str(ticket.resolve())] = (case, rule)
    shutil.copytree(EXAMPLE, inbox / "good")
    batch = sweep.pending_tickets(inbox, NothingRegistered(), "lethe-toyworld", TOY_CONFIG)
    batch = advance(batch, "validate", lambda r: {"validation": stages.validate(
        r.ticket_path, TOY_CONFIG, (tmp_path / "work" / r.ticket_path.split("/inbox/")[1]).parent)})
    by_path = {run.ticket_path: run for run in batch.runs}
    good = by_path.pop(str(inbox / "good" / "ticket.yaml"))
    assert good.active and good.validation["ticket_id"] == "TOY-0001"
    assert set(by_path) == set(expected) and len(expected) > 40
    for path, item in by_path.items():
        case, rule = expected[path]
        assert item.error["bad_input"] and item.status() == "bad input", case
        assert rule in item.error["message"], (case, item.error)
