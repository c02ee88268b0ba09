"""An exception no command expected, turned into one paragraph for the user and a traceback in the log.

Why: bad input is meant to raise a typed `SegStudioError` with a message, but a hostile or damaged
file can still reach code that was not written for it (a field of a surprising type, a file name
the file system refuses, a library raising its own error). The user must then get one paragraph
that names the files the command was working on and what to do, the traceback must be kept in
the log file for a bug report, and the exit status must be 2 like any other bad input — never a
Python traceback on the terminal.
"""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

from segstudio.core.logs import LOG_FILE, current_log_dir, log_exception, setup_logging

__all__ = ["report_unexpected"]

#: argparse destinations that name the files and folders a command reads or writes
_PATH_ARGUMENTS = ("folder", "project", "source", "out", "weights", "base", "resume", "scheme", "labels")


def _inputs(args: argparse.Namespace) -> list[str]:
    named = []
    for name in _PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, (str, Path)) and str(value):
            named.append(str(value))
    return named


def _cause(error: BaseException) -> str:
    if isinstance(error, OSError):
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        if error.errno == errno.ENAMETOOLONG:
            return f"a file name is longer than the file system allows{where}; shorten or remove that file"
        if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return f"the disk is full{where}; free some space and run it again"
        return f"a file could not be read or written{where}: {error.strerror or error}"
    if isinstance(error, MemoryError):
        return "it ran out of memory; an input file is probably far larger than it claims"
    if isinstance(error, RecursionError):
        return "an input file nests data too deeply"
    text = str(error)
    return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def report_unexpected(
    command: str, args: argparse.Namespace, error: BaseException, show_traceback: bool = False
) -> str:
    """Log `error` with its traceback (on stderr too only when `show_traceback`: `--verbose`) and
    return the paragraph to print (no traceback in it)."""
    if current_log_dir() is None:
        setup_logging(stderr=False)
    log_exception(f"cli.{command}", error, stderr=show_traceback)
    folder = current_log_dir()
    log = f"{folder / LOG_FILE}" if folder is not None else "the log (no log folder is writable)"
    inputs = _inputs(args)
    working = f" while working on {', '.join(inputs)}" if inputs else ""
    return (
        f"segstudio {command}: error: the command stopped on an unexpected problem{working}: "
        f"{_cause(error)}. Check that the files named here are the ones you meant and are not damaged "
        f"(a file from someone else may be malformed); nothing you saved before is lost. The details are "
        f"in {log}; please include that file when you report it."
    )
