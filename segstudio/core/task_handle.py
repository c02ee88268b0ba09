"""The progress/cancel handle that long work receives (DESIGN.md: Orange3's concurrent pattern).

Pure functions take a `TaskHandle`; the CLI passes a text progress bar, the GUI a handle whose
calls become queued Qt signals, tests pass `NullTask` or a recording fake (`tests/fakes.py`).
Work checks `handle.check_cancelled()` between units, which raises `CancelledError` so every caller stops the
same way.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Protocol, TextIO, runtime_checkable

from segstudio.core.errors import CancelledError


class FallbackNote(str):
    """A status message saying the work goes on in a degraded way (smaller tiles, the CPU, float32).

    Passed to `TaskHandle.set_status` like any status; the GUI's inference worker also lists it under
    Problems (the user must learn that their GPU ran out of memory), the log records a WARNING.
    """


@runtime_checkable
class TaskHandle(Protocol):
    def set_status(self, message: str) -> None: ...

    def set_progress(self, done: int, total: int) -> None: ...

    def is_cancelled(self) -> bool: ...

    def check_cancelled(self) -> None: ...


class NullTask:
    """Reports nothing; cancellable through `cancel()` (handy in tests and scripts)."""

    def __init__(self) -> None:
        self._cancel = threading.Event()

    def set_status(self, message: str) -> None:
        pass

    def set_progress(self, done: int, total: int) -> None:
        pass

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise CancelledError("cancelled")


class ConsoleProgress(NullTask):
    """A one-line progress bar on stderr for the CLI (redrawn at most 10 times a second).

    `live=False` (a log file or a pipe, when asked for progress there) writes plain lines instead,
    at most one every 5 seconds plus the last, so logs get no carriage-return redraws.
    """

    def __init__(
        self, label: str = "", stream: TextIO | None = None, width: int = 30, live: bool = True
    ) -> None:
        super().__init__()
        self._label = label
        self._stream = stream or sys.stderr
        self._width = width
        self._live = live
        self._status = ""
        self._last_draw = 0.0
        self._started = time.monotonic()

    def set_status(self, message: str) -> None:
        self._status = message

    def set_progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last_draw < (0.1 if self._live else 5.0):
            return
        self._last_draw = now
        fraction = done / total if total else 1.0
        filled = int(round(fraction * self._width))
        bar = "#" * filled + "-" * (self._width - filled)
        elapsed = now - self._started
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        line = f"{self._label} [{bar}] {done}/{total} eta {eta:5.0f}s {self._status[:40]:<40}"
        if not self._live:
            self._stream.write(line.rstrip() + "\n")
        else:
            self._stream.write("\r" + line + ("\n" if done >= total else ""))
        self._stream.flush()
