"""Hidden staging folders of exports and imports, swept after their writer died.

Why: a staging folder (`.<name>.segstudio-tmp-<pid>-<random>` beside an export,
`.<name>.segstudio-import-<pid>-<random>` beside an imported project) left by a SIGKILL stayed
until the next run into the *same* target (33 of 55 killed exports, 35 of 55 imports in the attack
run). Each writer now notes its staging folder in the user's SegStudio folder (`<log folder>/.staging/`,
one small JSON file each); every export, import and `segstudio info` sweeps the notes and deletes
the staging folders whose writer is gone: its process no longer exists, or the pid now belongs to
a process started after the folder was made (pid reuse), or the note is older than `MAX_AGE_S`
where the start time of processes cannot be known.

Only a real folder (not a link) whose name is a staging name carrying the note's pid is ever
deleted, so a tampered note cannot make the sweep delete anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from segstudio.core.logs import user_log_dir

__all__ = ["MAX_AGE_S", "register", "registry_dir", "sweep"]

#: Where the start time of a process is unknown, a note this old is stale whatever its pid.
MAX_AGE_S = 2 * 24 * 3600
_STAGING_NAME = re.compile(r"^\..+\.segstudio-(tmp|import)-(\d+)-[0-9a-f]{8}$")


def registry_dir() -> Path:
    return user_log_dir() / ".staging"


def register(staging: Path) -> None:
    """Note `staging` as this process's (best effort: without a note the same-target sweep still works)."""
    folder = registry_dir()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        note = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        note.write_text(
            json.dumps({"path": str(staging), "pid": os.getpid(), "created": time.time()}), encoding="utf-8"
        )


def _process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), where the OS says it (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _writer_gone(pid: int, created: float, now: float) -> bool:
    if pid == os.getpid():
        return False
    if not pid_alive(pid):
        return True
    started = _process_start(pid)
    if started is not None:
        return started > created + 1.0  # the pid was reused by a later process
    return now - created > MAX_AGE_S


def _remove(path: Path, pid: int) -> None:
    match = _STAGING_NAME.match(path.name)
    if match is None or int(match.group(2)) != pid or path.is_symlink() or not path.is_dir():
        return
    shutil.rmtree(path, ignore_errors=True)


def sweep(now: float | None = None) -> list[Path]:
    """Delete the staging folders of dead writers; the folders removed (for tests and `info`)."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        notes = list(registry_dir().glob("*.json"))
    except OSError:
        return removed
    for note in notes:
        try:
            data = json.loads(note.read_text(encoding="utf-8"))
            path, pid, created = Path(data["path"]), int(data["pid"]), float(data["created"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            with contextlib.suppress(OSError):
                note.unlink()
            continue
        if not path.exists() and not path.is_symlink():
            with contextlib.suppress(OSError):
                note.unlink()  # finished (published or cleaned up by its writer)
            continue
        if _writer_gone(pid, created, now):
            _remove(path, pid)
            removed.append(path)
            with contextlib.suppress(OSError):
                note.unlink()
    return removed
