"""Containment of paths written inside data files (dataset lists, manifests, labelme `imagePath`).

Datasets come from strangers, so a path *written in a file* is data, never an instruction: it may
only name something inside the folder it belongs to. Every importer, exporter and manifest reader
goes through these two functions:

- `contained_relative(written, base="")` -> the normalised relative path (`PurePosixPath`, no
  `.`/`..` left) where `written` lands inside its root, `base` being the folder (relative to the
  root) it is written relative to. Use it for names that become *destinations* (a file in a new
  project or export).
- `resolve_inside(root, written, base="", allow_outside=False, strict=False)` -> the absolute
  `Path` to read. `strict=True` also resolves symlinks and refuses a target outside the root; use
  it for folders SegStudio wrote itself (export manifests), where a symlink is never legitimate.

Refused (`UnsafePathError`, a `SegStudioError`, so the CLI prints it without a traceback): absolute
paths (`/x`, `C:\\x`, `C:x`, `\\\\server\\share`, `//server`), `..` climbing above the root (after
normalising, so `a/../../x` is caught), NUL and other control characters, text that is not a
file name on this system (lone surrogates), non-strings and empty paths. Backslashes count as
separators (datasets written on Windows). Lexical normalisation means the returned path never
contains `..`, so the OS cannot re-interpret it through a symlinked folder.

Files that the dataset's own folders contain, symlinks included, are read as they are (a
dataset whose `JPEGImages` is a symlink to shared storage keeps working): containment judges the
path the *file* wrote, not where the user's own links lead. `allow_outside=True` (the CLI's
`--allow-outside`) turns the refusal of absolute / climbing paths off for readers that really
mean it; destinations inside a new project never use it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from segstudio.core.errors import UnsafePathError

__all__ = ["UnsafePathError", "contained_relative", "display_path", "is_single_name", "resolve_inside"]


def _check_text(written: object) -> str:
    if not isinstance(written, str):
        raise UnsafePathError(f"{written!r} is not a path (expected text)")
    if not written.strip():
        raise UnsafePathError("an empty path names no file")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in written):
        raise UnsafePathError(f"path {written!r} contains control characters (NUL, newline, ...)")
    try:
        os.fsencode(written)
    except UnicodeError:
        raise UnsafePathError(f"path {written!r} is not a valid file name on this system") from None
    return written


def _is_absolute(written: str) -> bool:
    windows = PureWindowsPath(written)
    return written.startswith(("/", "\\")) or bool(windows.drive) or bool(windows.root)


def _normalise(parts: list[str], base_parts: tuple[str, ...], written: str) -> PurePosixPath:
    stack = list(base_parts)
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                raise UnsafePathError(f"path {written!r} climbs out of its folder with '..'")
            stack.pop()
        else:
            stack.append(part)
    if not stack:
        raise UnsafePathError(f"path {written!r} names the folder itself, not a file in it")
    return PurePosixPath(*stack)


def contained_relative(written: str, base: str | PurePosixPath = "") -> PurePosixPath:
    """Where `written` (relative to `base`, itself relative to the root) lands inside the root.

    Raises UnsafePathError when it is absolute, climbs out, or is not a usable file name.
    """
    text = _check_text(written)
    if _is_absolute(text):
        raise UnsafePathError(
            f"path {written!r} is absolute; a dataset may only name files inside its own folder"
        )
    base_parts = tuple(p for p in PurePosixPath(str(base).replace("\\", "/")).parts if p not in ("", "."))
    if ".." in base_parts or PurePosixPath(str(base)).is_absolute():
        raise ValueError(f"base {base!r} must be a normalised relative folder")
    return _normalise(text.replace("\\", "/").split("/"), base_parts, written)


def resolve_inside(
    root: str | os.PathLike[str],
    written: str,
    base: str | PurePosixPath = "",
    allow_outside: bool = False,
    strict: bool = False,
) -> Path:
    """The absolute path to read for `written` (see the module docstring); UnsafePathError if refused."""
    root_path = Path(os.path.abspath(root))
    if allow_outside:
        text = _check_text(written)
        if _is_absolute(text):
            return Path(os.path.normpath(text))
        return Path(os.path.normpath(root_path / str(base) / text.replace("\\", "/")))
    path = root_path.joinpath(*contained_relative(written, base).parts)
    if strict:
        real_root = os.path.realpath(root_path)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise UnsafePathError(f"path {written!r} leads out of {root_path} through a symbolic link")
    return path


def is_single_name(name: object) -> bool:
    """True for one plain file-name component (no separators, '.', '..', control characters)."""
    try:
        return isinstance(name, str) and contained_relative(name) == PurePosixPath(name) and "/" not in name
    except UnsafePathError:
        return False


def display_path(name: str) -> str:
    """`name` for people: bytes that are not UTF-8 (kept as surrogate escapes by Python, so the file
    still opens) shown as U+FFFD instead of being dropped (Qt) or crashing a print."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
