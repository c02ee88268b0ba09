"""Atomic file writes: temp file in the same folder, fsync, `os.replace`, fsync of the folder.

A reader (or a process restarted after a crash/SIGKILL) sees either the complete old file or the
complete new one, never a torn write: `os.replace` is atomic within one file system, which is why
the temp file lives next to the target rather than in /tmp.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from segstudio.core.state_guard import check_write_target

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "atomic_writer", "fsync_dir"]

TEMP_SUFFIX = ".tmp-segstudio"


def _current_umask() -> int:
    # Read once at import (setting the umask is process-wide and not thread-safe).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; written files get the permissions a plain open() would give.
_FILE_MODE = 0o666 & ~_current_umask()


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry so a completed rename survives power loss (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Yield a binary file; on a clean exit it replaces `path` atomically, on an exception it vanishes.

    Never writes through a link: the temp file is created with O_CREAT|O_EXCL (mkstemp), which fails
    on any existing name, links included; `os.replace` swaps the name itself, never the file a link
    points to; and inside an open project's state folder (`core.state_guard`) no folder on the way
    may be a link, checked before creating and again before replacing.
    """
    target = Path(path)
    check_write_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):  # not on Windows
                with contextlib.suppress(OSError):
                    os.fchmod(handle.fileno(), _FILE_MODE)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        check_write_target(target)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_writer(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    """Write JSON (UTF-8, non-ASCII kept readable, trailing newline).

    Text holding a file name that is not valid UTF-8 (lone surrogates) is written with \\u escapes,
    which every JSON reader accepts and Python reads back to the same name.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = (json.dumps(obj, indent=indent, ensure_ascii=True) + "\n").encode("ascii")
    atomic_write_bytes(path, data)
