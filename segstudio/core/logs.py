"""Logging for the app: warnings and errors to stderr, everything from INFO up to a rotating log file.

Why: a bug in a background worker used to become a one-line message in the GUI and was gone; now
its traceback is kept in `segstudio.log` next to the project's state (`<state folder>/logs/`) or,
with no project open, in the user's state folder (`$XDG_STATE_HOME/segstudio/logs`,
`~/Library/Logs/SegStudio`, `%LOCALAPPDATA%\\SegStudio\\Logs`). Help > Open log folder shows it.
Only the `segstudio` logger is configured (a library using us keeps its own logging setup).
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from segstudio.core.durations import format_duration
from segstudio.core.errors import CancelledError, SegStudioError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "LOGGER_NAME",
    "LOG_FILE",
    "current_log_dir",
    "log_exception",
    "logged_duration",
    "project_log_dir",
    "set_verbose",
    "setup_logging",
    "timed",
    "user_log_dir",
]

LOGGER_NAME = "segstudio"
LOG_FILE = "segstudio.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"


def user_log_dir() -> Path:
    """The per-user log folder (`SEGSTUDIO_LOG_DIR` overrides it, e.g. in tests)."""
    if os.environ.get("SEGSTUDIO_LOG_DIR"):
        return Path(os.environ["SEGSTUDIO_LOG_DIR"])
    if sys.platform == "win32":
        return (
            Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "SegStudio" / "Logs"
        )
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "SegStudio"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "segstudio" / "logs"


def project_log_dir(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / "logs"


class _StderrHandler(logging.StreamHandler):
    """Marks our stderr handler so repeated setup does not add a second one."""


class _FileHandler(logging.handlers.RotatingFileHandler):
    """Marks our file handler so moving to another folder replaces it."""


def _file_handler(folder: Path) -> _FileHandler | None:
    """None when the folder cannot be written, or lies in an open project's state folder behind a link
    (`core.state_guard`: a planted `logs` link must not make the log land on someone's file)."""
    from segstudio.core.errors import UnsafeStateError
    from segstudio.core.state_guard import check_write_target

    try:
        check_write_target(folder / LOG_FILE)
    except UnsafeStateError:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = _FileHandler(folder / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError:
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT))
    return handler


def setup_logging(log_dir: str | os.PathLike[str] | None = None, stderr: bool = True) -> Path | None:
    """Log to stderr (WARNING and up) and to `log_dir/segstudio.log` (INFO and up; default: the user's
    log folder). Calling it again moves the file to the new folder. Returns the log folder in use, or
    None when neither `log_dir` nor the user folder can be written (then stderr only)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    if stderr and not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        console = _StderrHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("segstudio %(levelname)s: %(message)s"))
        logger.addHandler(console)
    wanted = [Path(log_dir)] if log_dir is not None else []
    for folder in [*wanted, user_log_dir()]:
        current = current_log_dir()
        if current is not None and current == folder.absolute():
            return current
        handler = _file_handler(folder.absolute())
        if handler is not None:
            for old in [h for h in logger.handlers if isinstance(h, _FileHandler)]:
                logger.removeHandler(old)
                old.close()
            logger.addHandler(handler)
            return folder.absolute()
    return current_log_dir()


def set_verbose(verbose: bool) -> None:
    """`--verbose`: stderr shows INFO too (what the log file gets: timings of long work), not only WARNING."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, _StderrHandler):
            handler.setLevel(logging.INFO if verbose else logging.WARNING)


def current_log_dir() -> Path | None:
    """The folder our log file is in (None before `setup_logging`)."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, _FileHandler):
            return Path(handler.baseFilename).parent
    return None


def log_exception(where: str, error: BaseException, stderr: bool = True) -> None:
    """Record a caught exception with its traceback (workers report errors as messages; the log keeps the rest).

    `stderr=False` writes it to the log file only: the CLI prints its own one-paragraph message,
    and a traceback on the terminal is exactly what it must not show."""
    logger = logging.getLogger(f"{LOGGER_NAME}.{where}")
    exc_info = (type(error), error, error.__traceback__)
    if stderr:
        logger.error("%s: %s: %s", where, type(error).__name__, error, exc_info=exc_info)
        return
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 0, "%s: %s: %s", (where, type(error).__name__, error), exc_info
    )
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, _FileHandler):
            handler.handle(record)


@contextmanager
def logged_duration(logger: logging.Logger, what: str) -> Iterator[None]:
    """INFO "what: done in 2m 05s" (or "cancelled after ..."); a user error is a WARNING and anything
    else an ERROR with its traceback, each with the time it took. The exception propagates."""
    start = time.perf_counter()

    def took() -> str:
        return format_duration(time.perf_counter() - start, precise=True)

    try:
        yield
    except CancelledError:
        logger.info("%s: cancelled after %s", what, took())
        raise
    except SegStudioError as error:
        logger.warning("%s: stopped after %s: %s", what, took(), error)
        raise
    except Exception:
        logger.error("%s: failed after %s", what, took(), exc_info=True)
        raise
    logger.info("%s: done in %s", what, took())


def timed(what: str) -> Callable[[F], F]:
    """Decorator: `logged_duration` around every call, on the logger of the function's module."""

    def wrap(fn: F) -> F:
        logger = logging.getLogger(fn.__module__)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            with logged_duration(logger, what):
                return fn(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap
