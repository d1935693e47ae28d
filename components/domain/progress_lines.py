"""Progress a person can watch, in a terminal and in a log: a live bar on a TTY, else plain lines.

A takedown's stages run for minutes inside pipeline steps whose output goes to ZenML's step logs, a
pod's log or a CI log, where a bar's carriage returns pile up into one unreadable line. There, each
stage prints "<what>: k/n <postfix>" about every tenth of the way (and at the end) instead.
"""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

LINES_PER_STAGE = 10


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or wrapped stream
        return False


class LogLines(tqdm):
    """tqdm that writes a full line to stdout at the start, at every tenth of the total and at the end."""

    def __init__(self, *args, **kwargs):
        self._printed = -1  # the count last written
        super().__init__(*args, **{**kwargs, "file": sys.stdout, "mininterval": 0, "miniters": 1})

    def display(self, msg=None, pos=None):
        step = max(1, (self.total or 1) // LINES_PER_STAGE)
        if self._printed < 0 or self.n >= self._printed + step or self.n == self.total:
            self._write()
        return True

    def close(self):
        if not self.disable:
            self._write()
            self.disable = True  # tqdm's own close would draw the bar once more

    def _write(self):
        if self.n == self._printed:
            return
        self._printed = self.n
        postfix = f" {self.postfix}" if self.postfix else ""
        total = f"/{self.total}" if self.total else ""
        print(f"{self.desc}: {self.n}{total} {self.unit}{postfix}", file=sys.stdout, flush=True)


def progress_bar(iterable=None, total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = False):
    """A tqdm over `iterable` (or of `total` updates): disabled unless `enabled`, a bar on a terminal, lines elsewhere."""
    if not enabled:
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True)
    if _is_terminal(sys.stderr):
        return tqdm(iterable, total=total, desc=desc, unit=unit)
    return LogLines(iterable, total=total, desc=desc, unit=unit)
