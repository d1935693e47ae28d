"""The checks every door runs on a ticket before anything is copied, started or trained.

`lethe check ticket`, `lethe takedown`, `lethe submit` and the sweep's validate stage all refuse the
same inputs with the same messages: the ticket file and its schema (components/domain/ticket.py), the ticket
against the run config it is run with (its target model, a concept the detector can judge), then the
image set (the Great Expectations suite, components/validation/image_validation.py). Each raises an input error
(exit code 2): InputFileError or ImageValidationError.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..domain.file_errors import InputFileError
from ..domain.ticket import LoadedTicket, load_ticket

if TYPE_CHECKING:
    from ..validation.image_validation import ValidationReport


def model_names(base_model) -> list[str]:
    """What a ticket's target_model may say for this base model (run_config.BaseModelSource): its registry
    name, its hub id, or its folder's name."""
    found = [base_model.registry_name, base_model.hub_id, base_model.path.name if base_model.path else None]
    return list(dict.fromkeys(n for n in found if n))


def ticket_config_problems(loaded: LoadedTicket, config, config_path: str | Path) -> list[tuple[str, str]]:
    """(field, rule) for each way the ticket does not fit the run config (run_config.RunConfig)."""
    from ..evaluation.detectors import cannot_judge

    ticket, problems = loaded.ticket, []
    accepted = model_names(config.base_model)
    if ticket.target_model not in accepted:
        problems.append(("target_model", f"{ticket.target_model!r} is not the model of the run config {config_path} "
                                         f"({' or '.join(map(repr, accepted))}); run it with that model's config "
                                         "(--config), or correct the ticket"))
    reason = cannot_judge(config.evaluation.detector, ticket.concept, ticket.kind.value)
    if reason:
        problems.append(("concept", f"{ticket.concept!r} cannot be judged by the detector of {config_path} "
                                    f"(evaluation.detector.kind {config.evaluation.detector.kind}): {reason}; "
                                    "without a judge the erasure cannot be proven: run it with a config whose "
                                    "detector can judge it (--config)"))
    return problems


def check_ticket_meets_config(loaded: LoadedTicket, config, config_path: str | Path,
                              ticket_path: str | Path | None = None) -> None:
    """Raises InputFileError naming the ticket file (as `ticket_path` gives it) and each problem."""
    problems = ticket_config_problems(loaded, config, config_path)
    if problems:
        raise InputFileError(ticket_path or loaded.path, problems)


@dataclass(frozen=True)
class Admitted:
    loaded: LoadedTicket
    report: "ValidationReport"  # a successful one


def admit(ticket_path: str | Path, config, config_path: str | Path) -> Admitted:
    """Every check, in order; raises the first input error (InputFileError, then ImageValidationError)."""
    from ..validation.image_validation import ImageValidationError, validate_images

    loaded = load_ticket(ticket_path)
    check_ticket_meets_config(loaded, config, config_path, ticket_path)
    report = validate_images(loaded.image_paths, list(loaded.ticket.images), config.validation, ticket_path)
    if not report.success:
        raise ImageValidationError(report)
    return Admitted(loaded, report)
