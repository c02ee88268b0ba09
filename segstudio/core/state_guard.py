"""Never write through a link planted in a project's state folder.

Why: annotators open folders they did not make (a client's zip, a shared drive). A `.segstudio/lock`
that is a symlink to `~/.bashrc` used to be truncated to a process id by a read-only `segstudio info`;
a `masks` link made mask saves land in another folder; a `project.db` link made SQLite write pages
into its target. SegStudio never makes a link in its state folder, so any link there is foreign.

Three guards, each cheap:
- `check_state_folder` runs at open, before the lock file or the database is touched: every entry
  of the state folder (recursively, without following anything) must be a plain file or a real
  folder. A state folder the *user* named with `--project-dir` may itself be a link; the sidecar
  `.segstudio` inside an image folder may not (the user did not choose it).
- `guard` / `check_write_target`: while a project is open its state folder is registered here, and
  every atomic write (`core.atomic`) into it checks with `lstat` that no folder on the way and not
  the file itself is a link, just before creating and again before replacing.
- `open_nofollow`: the lock file is opened with `O_NOFOLLOW` and must be a plain file with one name.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from segstudio.core.errors import UnsafeStateError

__all__ = ["check_state_folder", "check_write_target", "guard", "open_nofollow", "unguard"]

#: Files whose content SegStudio rewrites in place (not by atomic replace): a hard link would carry
#: those writes to the other name, so they must have exactly one.
_IN_PLACE_FILES = ("lock", "project.db", "project.db-wal", "project.db-shm", "project.db-journal")


def _what_to_do(state_dir: Path) -> str:
    return (
        "SegStudio will not write through it. If you did not put it there, the folder came with it: remove "
        f"`{state_dir}` or just that entry (the images are not in it), or open the folder with its state kept "
        "elsewhere, in a new empty folder: `segstudio FOLDER --project-dir DIR` (also for info, export and the "
        "other commands)"
    )


def _link_error(state_dir: Path, entry: Path) -> UnsafeStateError:
    try:
        target = os.readlink(entry)
    except OSError:
        target = "?"
    return UnsafeStateError(
        f"this folder's SegStudio state contains a link: {entry} -> {target}; {_what_to_do(state_dir)}"
    )


def _special_error(state_dir: Path, entry: Path, why: str) -> UnsafeStateError:
    return UnsafeStateError(
        f"this folder's SegStudio state contains {entry}, which {why}; {_what_to_do(state_dir)}"
    )


def check_state_folder(state_dir: Path, sidecar: bool) -> None:
    """UnsafeStateError if the state folder (when `sidecar`) or anything inside it is a link or special file.

    Reads only; a missing state folder passes (it will be created as a real folder).
    """
    if sidecar and os.path.islink(state_dir):
        raise _link_error(state_dir, state_dir)
    if not os.path.isdir(state_dir):
        return
    pending = [str(state_dir)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: later steps report it with their own message
        for entry in entries:
            if entry.is_symlink():
                raise _link_error(state_dir, Path(entry.path))
            if entry.is_dir(follow_symlinks=False):  # the type comes with the listing: no stat per file
                pending.append(entry.path)
                continue
            if not entry.is_file(follow_symlinks=False):
                raise _special_error(
                    state_dir, Path(entry.path), "is not a plain file (a pipe, socket or device)"
                )
            if (
                folder == str(state_dir)
                and entry.name in _IN_PLACE_FILES
                and entry.stat(follow_symlinks=False).st_nlink > 1
            ):
                raise _special_error(
                    state_dir,
                    Path(entry.path),
                    "is a hard link shared with another file (SegStudio never makes one)",
                )


def open_nofollow(path: Path, state_dir: Path) -> int:
    """A read-write descriptor of `path` (created if missing) that is never a link nor a shared hard link."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if os.path.islink(path):  # also where O_NOFOLLOW does not exist (Windows)
        raise _link_error(state_dir, path)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        if os.path.islink(path):
            raise _link_error(state_dir, path) from None
        raise error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise _special_error(state_dir, path, "is not a plain file of its own (a pipe, device or hard link)")
    return fd


# ---------------------------------------------------------------- writes into open state folders

_guarded: dict[str, int] = {}
_guarded_lock = threading.Lock()


def guard(state_dir: Path) -> None:
    """Check every later atomic write under `state_dir` (reference-counted: one per open project)."""
    key = os.path.abspath(state_dir)
    with _guarded_lock:
        _guarded[key] = _guarded.get(key, 0) + 1


def unguard(state_dir: Path) -> None:
    key = os.path.abspath(state_dir)
    with _guarded_lock:
        count = _guarded.get(key, 0) - 1
        if count > 0:
            _guarded[key] = count
        else:
            _guarded.pop(key, None)


def _root_of(path: str) -> str | None:
    with _guarded_lock:
        roots = list(_guarded)
    best = None
    for root in roots:
        if (path == root or path.startswith(root + os.sep)) and (best is None or len(root) > len(best)):
            best = root
    return best


def check_write_target(path: str | os.PathLike[str]) -> None:
    """UnsafeStateError if `path` lies in an open project's state folder behind a link, or is one.

    Every folder between the state folder and the file must be a real folder (or not exist yet) and
    the file itself a plain file (or not exist yet). Paths outside open state folders pass unchecked.
    """
    target = os.path.abspath(path)
    root = _root_of(target)
    if root is None:
        return
    current = root
    for part in Path(os.path.relpath(target, root)).parts:
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return  # nothing further down exists yet: creating it cannot follow a link
        if stat.S_ISLNK(info.st_mode):
            raise _link_error(Path(root), Path(current))
        if current != target and not stat.S_ISDIR(info.st_mode):
            raise _special_error(Path(root), Path(current), "is not a folder")
