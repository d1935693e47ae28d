"""The ticket inbox (`lethe submit`, folders and fsspec URLs) and the sweep's per-ticket bookkeeping."""
import shutil
import uuid

import pytest
from typer.testing import CliRunner

from components import sweep
from components.file_errors import InputFileError
from components.image_validation import ImageValidationError
from components.inbox import local_copy, submit, ticket_files
from components.registry import AdapterRegistry
from components.ticket import content_sha256, load_ticket
from conftest import EXAMPLE_TICKET, REPO

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
    items = {i["ticket_path"].split("/inbox/")[1]: i for i in sweep.pending_tickets(inbox, registry, "lethe-toyworld")}
    assert set(items) == {"good/ticket.yaml", "broken/ticket.yaml", "junk.yaml"}
    assert items["junk.yaml"]["error"]["bad_input"] and not sweep.active(items["junk.yaml"])
    assert sweep.active(items["good/ticket.yaml"]) and sweep.active(items["broken/ticket.yaml"])  # images are checked later

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "x").write_text("x")
    sha = content_sha256(load_ticket(inbox / "good" / "ticket.yaml"))
    registry.register("lethe-toyworld", {"adapter": adapter}, {"ticket_id": "TOY-0001", "content_sha256": sha}, {},
                      run_name="TOY-0001")
    items = {i["ticket_path"].split("/inbox/")[1]: i for i in sweep.pending_tickets(inbox, registry, "lethe-toyworld")}
    assert items["good/ticket.yaml"]["skipped_version"] == "1"
    assert sweep.active(items["broken/ticket.yaml"])  # same ticket text, other image bytes: not a repeat


def test_advance_records_one_tickets_failure_and_runs_the_others():
    items = [{"ticket_path": "a", "ticket_id": "A"}, {"ticket_path": "b", "ticket_id": "B"},
             {"ticket_path": "c", "ticket_id": "C", "skipped_version": "3"}]
    seen = []

    def work(item):
        seen.append(item["ticket_id"])
        if item["ticket_id"] == "A":
            raise ImageValidationError.__new__(ImageValidationError)  # an input error, by type
        return {"token_dir": f"/t/{item['ticket_id']}"}

    out = sweep.advance(items, "learn_concept_token", work)
    assert seen == ["A", "B"]  # the skipped ticket is not worked on
    assert out[0]["error"]["stage"] == "learn_concept_token" and out[0]["error"]["bad_input"]
    assert out[1]["token_dir"] == "/t/B" and "token_dir" not in items[1]  # inputs are not mutated
    later = sweep.advance(out, "train_unlearning", lambda i: {"adapter_dir": "/x"})
    assert "adapter_dir" not in later[0] and later[1]["adapter_dir"] == "/x"
    later[1]["decision"] = {"passed": False}
    assert [sweep.status(i) for i in later] == ["bad input", "rejected", "skipped (version 3)"]
    with pytest.raises(sweep.SweepFlagged, match="A: bad input.*B: rejected"):
        raise sweep.SweepFlagged(sweep.failed(later))


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
