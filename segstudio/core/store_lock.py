"""One SegStudio process per project: an OS advisory lock on `<state>/lock`.

The OS drops the lock when the process dies, so a crash never leaves a project locked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from segstudio.core.errors import ProjectLockedError
from segstudio.core.state_guard import open_nofollow

__all__ = ["LOCKED_MESSAGE", "LOCK_NAME", "ProcessLock"]

LOCK_NAME = "lock"
LOCKED_MESSAGE = "project is in use by another SegStudio process"


class ProcessLock:
    """An exclusive advisory lock on a file, released on close and by the OS when the process dies."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle: Any = None

    def acquire(self) -> None:
        """Take the lock or raise ProjectLockedError at once (never waits for the other process).

        The file is opened with O_NOFOLLOW (`core.state_guard`): a planted link is refused, never
        truncated through.
        """
        fd = open_nofollow(self._path, self._path.parent)
        handle = os.fdopen(fd, "r+b")
        try:
            if os.name == "nt":  # pragma: no cover - exercised on Windows only
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ProjectLockedError(
                f"{LOCKED_MESSAGE}{self._holder()} (the app or a command such as predict or train): "
                f"close or finish it first (project state: {self._path.parent})"
            ) from None
        with contextlib.suppress(OSError):  # the holder's pid, for a person looking at the file
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
        self._handle = handle

    def _holder(self) -> str:
        """' (process 1234)' from the pid the holder wrote into the lock file, when readable."""
        try:
            text = self._path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return ""
        if text == str(os.getpid()):
            return " (held by this same process: a Project still open)"
        return f" (process {text})" if text.isdigit() else ""

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            if os.name == "nt":  # pragma: no cover
                import msvcrt

                self._handle.seek(0)
                msvcrt.locking(self._handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
