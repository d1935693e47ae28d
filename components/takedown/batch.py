"""Tickets on their way through the takedown stages: what one pipeline step hands to the next.

Both pipelines run the same steps over a batch: the takedown pipeline a batch of one, which stops at
the first failure (the run fails at that step); the sweep every pending ticket of an inbox, where a
ticket that fails keeps its error and sits out the later stages while the others go on.

A batch saves itself to a folder: plain fields as JSON, each typed stage output by its own save()
(LearnedToken, ErasureResult, EvaluationSummary), so the pipeline's artefact store holds everything a
later step, a pod on another node or an auditor needs. An output loaded from an earlier artefact is
saved as a reference to it, not copied again.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

from ..evaluation.decision import Check, Decision
from ..domain.file_errors import INPUT_ERROR_TYPES
from ..registry.model_registry import RegisteredVersion
from .resolved_inputs import ResolvedInputs

BATCH_JSON = "batch.json"
SUMMARY_JSON = "lethe_evaluation.json"


@dataclass
class EvaluationSummary:
    """The evaluation's metrics and its report folder (report.html, grid.png, metrics.json)."""
    metrics: dict
    report_dir: Path

    def save(self, folder: Path) -> Path:
        shutil.copytree(self.report_dir, folder, dirs_exist_ok=True)
        (folder / SUMMARY_JSON).write_text(json.dumps({"metrics": self.metrics}, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path) -> "EvaluationSummary":
        return cls(metrics=json.loads((folder / SUMMARY_JSON).read_text())["metrics"], report_dir=Path(folder))


def _result_kinds():
    from ..erasure.result_kinds import load_result
    from ..erasure.textual_inversion import LearnedToken

    return {"token": LearnedToken.load, "result": load_result, "evaluation": EvaluationSummary.load}


# Fields saved by their own save()/load() into a subfolder; the rest are plain data.
OBJECT_FIELDS = ("token", "result", "evaluation")


@dataclass
class TicketRun:
    """One ticket's way through the stages; each stage fills its field."""
    ticket_path: str
    ticket_id: str | None = None
    run_key: str | None = None
    skipped_version: str | None = None  # its exact content is already registered (a sweep skips it)
    error: dict | None = None  # the stage that failed, the error's type and message, whether it was bad input
    inputs: ResolvedInputs | None = None
    validation: dict | None = None
    token: object | None = None  # LearnedToken
    result: object | None = None  # ErasureResult
    evaluation: EvaluationSummary | None = None
    version: RegisteredVersion | None = None
    decision: Decision | None = None
    release: dict | None = None  # the candidate release this ticket went into (release_flow.ReleaseOutcome.as_dict)

    @property
    def active(self) -> bool:
        return self.error is None and self.skipped_version is None

    def status(self) -> str:
        if self.skipped_version is not None:
            return f"skipped (version {self.skipped_version})"
        if self.error is not None:
            return "bad input" if self.error["bad_input"] else f"failed at {self.error['stage']}"
        if self.decision is not None:
            if not self.decision.passed:
                return "rejected"
            if self.release is not None and not self.release["promoted"]:
                return "rejected in release"
            return "promoted"
        return "not finished"

    def label(self) -> str:
        return self.ticket_id or self.ticket_path


@dataclass
class TakedownBatch:
    config_path: str
    runs: list[TicketRun] = field(default_factory=list)
    isolate_failures: bool = False  # True: a sweep (record and go on); False: a takedown (raise)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        runs = []
        for i, run in enumerate(self.runs):
            plain = {f.name: getattr(run, f.name) for f in fields(run) if f.name not in OBJECT_FIELDS}
            plain["inputs"] = run.inputs.model_dump() if run.inputs else None
            plain["version"] = asdict(run.version) if run.version else None
            plain["decision"] = asdict(run.decision) if run.decision else None
            plain["objects"] = {name: _save_object(getattr(run, name), folder / str(i) / name)
                                for name in OBJECT_FIELDS if getattr(run, name) is not None}
            runs.append(plain)
        payload = {"config_path": self.config_path, "isolate_failures": self.isolate_failures, "runs": runs}
        (folder / BATCH_JSON).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path, fetch: Callable[[str], Path] | None = None, origin: str | None = None) -> "TakedownBatch":
        """`folder`: a local copy of the batch saved at `origin` (its artefact's URI); `fetch` turns a reference
        to an earlier artefact's object into a local folder."""
        payload = json.loads((folder / BATCH_JSON).read_text())
        loaders, runs = _result_kinds(), []
        for i, plain in enumerate(payload["runs"]):
            objects = plain.pop("objects")
            run = TicketRun(**{k: v for k, v in plain.items() if k not in ("inputs", "version", "decision")})
            run.inputs = ResolvedInputs(**plain["inputs"]) if plain["inputs"] else None
            run.version = RegisteredVersion(**plain["version"]) if plain["version"] else None
            if plain["decision"]:
                d = plain["decision"]
                run.decision = Decision(passed=d["passed"], checks=tuple(Check(**c) for c in d["checks"]))
            for name, where in objects.items():
                local = folder / str(i) / name if where == "here" else (fetch or Path)(where)
                obj = loaders[name](local)
                # where it is stored for good: a later batch that carries it on refers to it there
                obj._stored_at = where if where != "here" else (f"{origin}/{i}/{name}" if origin else None)
                setattr(run, name, obj)
            runs.append(run)
        return cls(config_path=payload["config_path"], runs=runs, isolate_failures=payload["isolate_failures"])


def _save_object(obj, folder: Path) -> str:
    """'here' (saved into this batch's folder) or the folder of the artefact it was loaded from."""
    stored = getattr(obj, "_stored_at", None)
    if stored:
        return stored
    obj.save(folder)
    return "here"


def error_record(stage: str, err: BaseException) -> dict:
    return {"stage": stage, "type": type(err).__name__, "message": str(err),
            "bad_input": type(err).__name__ in INPUT_ERROR_TYPES}


def advance(batch: TakedownBatch, stage: str, work: Callable[[TicketRun], dict]) -> TakedownBatch:
    """Run `work` on every active ticket and set the fields it returns. In a sweep an exception becomes that
    ticket's error; in a takedown it propagates, so the run fails at this step (and a re-run resumes here)."""
    runs = []
    for run in batch.runs:
        run = TicketRun(**{f.name: getattr(run, f.name) for f in fields(run)})
        if run.active:
            try:
                for name, value in work(run).items():
                    setattr(run, name, value)
            except Exception as err:  # noqa: BLE001 - the business rule: one ticket's failure is recorded, not raised
                if not batch.isolate_failures:
                    raise
                run.error = error_record(stage, err)
        runs.append(run)
    return TakedownBatch(config_path=batch.config_path, runs=runs, isolate_failures=batch.isolate_failures)


def flagged(batch: TakedownBatch) -> list[TicketRun]:
    """Tickets a scheduled run must flag: errors and rejections (a skip is fine)."""
    return [r for r in batch.runs if r.status() != "promoted" and r.skipped_version is None]


class SweepFlagged(RuntimeError):
    """Raised after a sweep handled every ticket, when some failed or were rejected (so schedulers alert)."""

    def __init__(self, runs: list[TicketRun]):
        self.runs = runs
        super().__init__("; ".join(f"{r.label()}: {r.status()}"
                                   + (f" ({r.error['type']}: {r.error['message']})" if r.error else "") for r in runs))
