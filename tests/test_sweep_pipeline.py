"""The sweep pipeline (what `lethe schedule` runs on a cluster) end to end on the local stack: real ZenML, real
MLflow, the takedown stages for every pending ticket of an inbox, one bad ticket not stopping the good one."""
import shutil
import subprocess
import sys

import pytest

from conftest import EXAMPLE_TICKET, REPO
from test_takedown_pipeline import registry, small_config

pytestmark = pytest.mark.filterwarnings("ignore")
RUN_SWEEP = ("import sys; from pipelines.local_stack import configure_environment; configure_environment()\n"
             "from pipelines.stack_activation import activate; activate(None)\n"
             "from pipelines.sweep_pipeline import sweep_pipeline\n"
             "sweep_pipeline(inbox=sys.argv[1], config_path=sys.argv[2])")


def sweep(home, inbox, config) -> subprocess.CompletedProcess:
    env = {"LETHE_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", RUN_SWEEP, str(inbox), str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def test_a_sweep_run_promotes_the_good_ticket_flags_the_bad_one_and_skips_it_next_time(tmp_path):
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    shutil.copytree(EXAMPLE_TICKET.parent, inbox / "good")
    shutil.copytree(EXAMPLE_TICKET.parent, inbox / "broken")
    (inbox / "broken" / "circle_3.png").write_bytes(b"")
    config = small_config(tmp_path, "pass")

    first = sweep(home, inbox, config)
    assert first.returncode != 0  # flagged for the scheduler's alerting, after the good ticket went through
    log = first.stdout + first.stderr
    assert "SweepFlagged" in log and "TOY-0001: bad input" in log and "circle_3.png" in log
    versions = registry(home).find_versions("lethe-toyworld")
    assert len(versions) == 1
    record = registry(home).version_record("lethe-toyworld", versions[0].version)
    assert record["status"] == "approved" and record["aliases"] == ["ticket-toy-0001"]
    # the night's approved tickets went into one release, now production
    release = registry(home).version_record("lethe-toyworld-release", "1")
    assert "production" in release["aliases"] and release["tags"]["release_reason"] == "sweep"
    assert release["tags"]["tickets"] == '["TOY-0001"]'
    assert record["tags"]["content_sha256"] and record["tags"]["run_id"]

    second = sweep(home, inbox, config)
    assert "TOY-0001: bad input" in second.stdout + second.stderr  # still flagged: it was never fixed
    assert len(registry(home).find_versions("lethe-toyworld")) == 1  # the good one was skipped, not redone
