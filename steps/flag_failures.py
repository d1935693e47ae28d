from __future__ import annotations

from zenml import step

from components.takedown.batch import SweepFlagged, TakedownBatch, flagged


@step(enable_cache=False)
def flag_failures(outcomes: TakedownBatch) -> None:
    """Fail the sweep run (for the scheduler's alerting) if any ticket failed or was rejected, after every
    ticket was handled; the gate's outcomes stay readable."""
    failures = flagged(outcomes)
    if failures:
        raise SweepFlagged(failures)
