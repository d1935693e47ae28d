"""The ticket inbox (`lethe submit`, folders and fsspec URLs) and the sweep's per-ticket bookkeeping."""
import shutil
import uuid

import pytest
from typer.testing import CliRunner

from components.takedown import sweep
from components.domain.file_errors import InputFileError
from components.validation.image_validation import ImageValidationError
from components.takedown.inbox import local_copy, submit, ticket_files
from components.registry.model_registry import AdapterRegistry
from components.domain.ticket import content_sha256, load_ticket
from conftest import EXAMPLE_TICKET, REPO

TOY = str(REPO / "configs" / "toy.yaml")

TOY_CONFIG = REPO / "configs" / "toy.yaml"


@pytest.fixture
def broken_ticket(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(EXAMPLE_TICKET.parent, folder)
    (folder / "circle_3.png").write_bytes(b"not a png")
    return folder / "ticket.yaml"


def test_submit_copies_a_ticket_once_into_its_content_folder(tmp_path, toy_config):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = submit(EXAMPLE_TICKET, str(inbox), toy_config, TOY_CONFIG)
    again = submit(EXAMPLE_TICKET, str(inbox), toy_config, TOY_CONFIG)
    loaded = load_ticket(EXAMPLE_TICKET)
    assert not first.already_there and again.already_there and first.destination == again.destination
    folder = inbox / f"TOY-0001-{content_sha256(loaded)[:12]}"
    copied = load_ticket(folder / "ticket.yaml")  # a complete, loadable ticket
    assert content_sha256(copied) == content_sha256(loaded)
    assert ticket_files(str(inbox)) == [str(folder / "ticket.yaml")]


def test_submit_refuses_a_bad_ticket_before_copying_anything(tmp_path, toy_config, broken_ticket):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(ImageValidationError, match="circle_3.png"):
        submit(broken_ticket, str(inbox), toy_config, TOY_CONFIG)
    with pytest.raises(InputFileError, match="file not found"):
        submit(tmp_path / "missing.yaml", str(inbox), toy_config, TOY_CONFIG)
    assert list(inbox.iterdir()) == []


def test_a_remote_inbox_is_staged_locally_whole_tickets_only(tmp_path):
    url = f"memory://inbox-{uuid.uuid4().hex}"
    done = submit(EXAMPLE_TICKET, url)
    assert done.destination.startswith(url)
    import fsspec

    fs = fsspec.filesystem("memory")
    half = f"{url.removeprefix('memory://')}/HALF-0001-000000000000"
    fs.pipe(f"{half}/circle_1.png", b"an image whose ticket file has not arrived yet")
    staged = local_copy(url, tmp_path / "staged")
    tickets = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("ticket.yaml"))
    assert tickets == [f"{done.destination.rsplit('/', 2)[1]}/ticket.yaml"]  # the half submission is not staged
    assert load_ticket(staged / tickets[0]).ticket.ticket_id == "TOY-0001"
    assert not list((tmp_path / "staged.partial").rglob("ticket.yaml"))


def test_pending_skips_registered_content_and_reports_bad_files(tmp_path, broken_ticket):
    inbox = tmp_path / "inbox"
    shutil.copytree(EXAMPLE_TICKET.parent, inbox / "good")
    shutil.copytree(broken_ticket.parent, inbox / "broken")
    (inbox / "junk.yaml").write_text("ticket_id: [not, a, ticket]\n")
    registry = AdapterRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=(tmp_path / "a").as_uri())
    items = {i.ticket_path.split("/inbox/")[1]: i for i in sweep.pending_tickets(inbox, registry, "lethe-toyworld", TOY).runs}
    assert set(items) == {"good/ticket.yaml", "broken/ticket.yaml", "junk.yaml"}
    assert items["junk.yaml"].error["bad_input"] and not items["junk.yaml"].active
    assert items["good/ticket.yaml"].active and items["broken/ticket.yaml"].active  # images are checked later

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "x").write_text("x")
    sha = content_sha256(load_ticket(inbox / "good" / "ticket.yaml"))
    registry.register("lethe-toyworld", {"adapter": adapter}, {"ticket_id": "TOY-0001", "content_sha256": sha}, {},
                      run_name="TOY-0001")
    items = {i.ticket_path.split("/inbox/")[1]: i for i in sweep.pending_tickets(inbox, registry, "lethe-toyworld", TOY).runs}
    assert items["good/ticket.yaml"].skipped_version == "1"
    assert items["broken/ticket.yaml"].active  # same ticket text, other image bytes: not a repeat


def test_advance_records_one_tickets_failure_and_runs_the_others_in_a_sweep_and_raises_in_a_takedown():
    from components.evaluation.decision import Decision
    from components.takedown.batch import SweepFlagged, TakedownBatch, TicketRun, advance, flagged

    runs = [TicketRun("a", "A"), TicketRun("b", "B"), TicketRun("c", "C", skipped_version="3")]
    batch = TakedownBatch(config_path="cfg", runs=runs, isolate_failures=True)
    seen = []

    def work(run):
        seen.append(run.ticket_id)
        if run.ticket_id == "A":
            raise ImageValidationError.__new__(ImageValidationError)  # an input error, by type
        return {"token": f"token of {run.ticket_id}"}

    out = advance(batch, "learn_concept_token", work)
    assert seen == ["A", "B"]  # the skipped ticket is not worked on
    assert out.runs[0].error["stage"] == "learn_concept_token" and out.runs[0].error["bad_input"]
    assert out.runs[1].token == "token of B" and runs[1].token is None  # inputs are not mutated
    later = advance(out, "gate", lambda r: {"decision": Decision(passed=False, checks=())})
    assert later.runs[0].decision is None and later.runs[1].decision is not None
    assert [r.status() for r in later.runs] == ["bad input", "rejected", "skipped (version 3)"]
    with pytest.raises(SweepFlagged, match="A: bad input.*B: rejected"):
        raise SweepFlagged(flagged(later))
    # a takedown (a batch of one that is not isolated) fails at the step, so that a re-run resumes there
    with pytest.raises(ImageValidationError):
        advance(TakedownBatch(config_path="cfg", runs=[TicketRun("a", "A")]), "learn_concept_token", work)


def test_a_batch_saves_and_loads_every_stage_output(tmp_path):
    import torch

    from components.erasure.textual_inversion import LearnedToken
    from components.evaluation.decision import Check, Decision
    from components.registry.model_registry import RegisteredVersion
    from components.takedown.resolved_inputs import BaseModelRef, ResolvedInputs
    from components.takedown.batch import EvaluationSummary, TakedownBatch, TicketRun

    report = tmp_path / "report"
    report.mkdir()
    (report / "report.html").write_text("<html></html>")
    token = LearnedToken(token="<c>", embedding=torch.ones(1, 4), concept="circle", hyperparameters={"steps": 3},
                         wall_time_s=1.5)
    run = TicketRun("t.yaml", "T-1", "k" * 64, validation={"ticket_id": "T-1"}, token=token,
                    inputs=ResolvedInputs(ticket_path="t.yaml", config_path="c.yaml", ticket_id="T-1", run_key="k" * 64,
                                          base=BaseModelRef(source="s", revision=None, folder="/m", weights_sha256="0" * 64,
                                                            files_fingerprint="f")),
                    evaluation=EvaluationSummary(metrics={"forget_detection_rate": 0.0}, report_dir=report),
                    version=RegisteredVersion("m", "2", "r", "s"),
                    decision=Decision(passed=True, checks=(Check("forget_detection_rate", 0.0, 0.1, True, "ok"),)))
    batch = TakedownBatch(config_path="c.yaml", runs=[run, TicketRun("u.yaml", error={"stage": "load"})])
    loaded = TakedownBatch.load(batch.save(tmp_path / "saved"), origin="store://batch")
    again, failed = loaded.runs
    assert again.inputs == run.inputs and again.version == run.version and again.decision == run.decision
    assert torch.equal(again.token.embedding, token.embedding) and again.token.concept == "circle"
    assert again.evaluation.metrics == run.evaluation.metrics and (again.evaluation.report_dir / "report.html").exists()
    assert failed.error == {"stage": "load"} and failed.token is None
    # a batch that carries an output on refers to where it is stored instead of copying it again
    assert again.token._stored_at == "store://batch/0/token"
    fetched = []
    relayed = TakedownBatch.load(loaded.save(tmp_path / "relayed"),
                                 fetch=lambda uri: fetched.append(uri) or tmp_path / "saved" / uri.removeprefix("store://batch/"))
    assert not (tmp_path / "relayed" / "0").exists() and sorted(fetched) == ["store://batch/0/evaluation",
                                                                             "store://batch/0/token"]
    assert torch.equal(relayed.runs[0].token.embedding, token.embedding)


def test_lethe_submit_exits_2_on_a_bad_ticket_and_0_twice_on_a_good_one(tmp_path, broken_ticket):
    from pipelines.cli import app

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    runner = CliRunner()
    bad = runner.invoke(app, ["submit", str(broken_ticket), "--inbox", str(inbox)])
    assert bad.exit_code == 2 and "circle_3.png" in bad.output and not list(inbox.iterdir())
    first = runner.invoke(app, ["submit", str(EXAMPLE_TICKET), "--inbox", str(inbox)])
    second = runner.invoke(app, ["submit", str(EXAMPLE_TICKET), "--inbox", str(inbox)])
    assert first.exit_code == second.exit_code == 0
    assert "submitted: ticket TOY-0001" in first.output and "already in the inbox" in second.output
