"""Listing the images of a folder tree: recursive, hidden entries and the project's state skipped.

Only `os.scandir` and one `stat` per file: this runs on every project open, so it must not
read file contents (hashing happens only for new or changed files, see `core.project`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from segstudio.core.images import IMAGE_EXTENSIONS

__all__ = ["FileStat", "scan_images"]


class FileStat(NamedTuple):  # a NamedTuple: built 10,000 times per open, cheaper than a dataclass
    rel_path: str  # '/'-separated, relative to the image folder
    size: int
    mtime_ns: int


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("~$") or name in ("Thumbs.db", "desktop.ini", "__MACOSX")


def scan_images(image_dir: str | os.PathLike[str], exclude: tuple[Path, ...] = ()) -> dict[str, FileStat]:
    """Map rel_path -> FileStat for every image file under `image_dir`.

    Hidden files and folders (dot-names, `__MACOSX`), symlinked folders (no loops) and the folders
    in `exclude` (e.g. a project state folder placed inside the image folder) are skipped.
    Unreadable sub-folders are skipped rather than failing the whole scan.
    """
    root = Path(image_dir)
    excluded = {os.path.normcase(os.path.abspath(p)) for p in exclude}
    found: dict[str, FileStat] = {}
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if _is_hidden(name):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if os.path.normcase(os.path.abspath(entry.path)) not in excluded:
                                stack.append((entry.path, f"{prefix}{name}/"))
                            continue
                        dot = name.rfind(".")
                        if dot <= 0 or name[dot:].lower() not in IMAGE_EXTENSIONS:
                            continue
                        st = entry.stat()  # follows a symlinked file to its target
                    except OSError:
                        continue
                    if not entry.is_file():
                        continue
                    found[prefix + name] = FileStat(prefix + name, st.st_size, st.st_mtime_ns)
        except OSError:
            continue
    return found
