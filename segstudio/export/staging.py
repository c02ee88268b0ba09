"""The export folder's life cycle: refuse unrelated folders, stage in a sibling, swap into place.

An export is written into a hidden sibling folder (`.<name>.segstudio-tmp-<pid>-<random>`) and
renamed into place only when complete, so a cancelled or crashed export never leaves a half
dataset behind. The finished folder carries `segstudio_manifest.json` (format, options, and for
every image its source path, exported name, files and a content key); a later export of the same
format into that folder hard-links the files of unchanged images from the old folder instead of
rewriting them, then swaps the folders.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from segstudio.core.atomic import atomic_write_json, fsync_dir
from segstudio.core.errors import ExportError, UnsafePathError
from segstudio.core.paths import resolve_inside
from segstudio.core.safe_json import load_json_file
from segstudio.export import staging_registry

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "OutputFolder",
    "flush_tree",
    "follow_out_link",
    "make_staging_dir",
    "read_manifest",
    "refuse_mount_point",
    "remove_dead_staging",
]

MANIFEST_NAME = "segstudio_manifest.json"
MANIFEST_FORMAT = "segstudio-export"
_TMP_TAG = ".segstudio-tmp-"
_OLD_TAG = ".segstudio-old-"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a previous SegStudio export in `folder`, or None."""
    path = Path(folder) / MANIFEST_NAME
    try:
        data = load_json_file(path, ExportError)
    except ExportError:  # unreadable, not JSON, nested too deep: not a manifest we wrote
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def _listed_files(manifest: dict[str, Any]) -> set[str]:
    """Every file the manifest says SegStudio wrote (entries of the wrong type list nothing)."""
    files = {f for f in _as_list(manifest.get("index_files")) if isinstance(f, str)}
    for entry in _as_list(manifest.get("items")):
        if isinstance(entry, dict):
            files.update(f for f in _as_list(entry.get("files")) if isinstance(f, str))
    files.add(MANIFEST_NAME)
    return files


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def refuse_mount_point(folder: Path, what: str) -> None:
    """ExportError when `folder` is a mount point: it cannot be renamed or removed, and SegStudio
    publishes a finished export/import by renaming a staging folder into its place."""
    if folder.is_dir() and os.path.ismount(folder):
        raise ExportError(
            f"{folder} is a mount point (a separate disk or share); SegStudio replaces the {what} folder as a whole, "
            f"so choose a new folder inside it, e.g. {folder / folder.name if folder.name else folder / what}"
        )


def make_staging_dir(target: Path, tag: str) -> Path:
    """Create the hidden sibling `.<name><tag><pid>-<random>` of `target` that work is staged in.

    The pid in the name lets `remove_dead_staging` tell a live writer's folder from a dead one's;
    the folder is also registered (`staging_registry`), so that a writer killed by SIGKILL leaves it
    only until the next SegStudio export, import or `info`, whatever their target.
    """
    staging_registry.sweep()
    staging = target.parent / f".{target.name}{tag}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    staging_registry.register(staging)
    return staging


def follow_out_link(folder: str | os.PathLike[str]) -> Path:
    """The folder an `--out` link points to (the user named the link: write where it leads).

    Why: the export and import publish by renaming a staging folder into place; renaming over a
    link replaced the link itself, so the linked earlier export was never updated and the link was
    kept as `.<name>.segstudio-old-*` forever, and a link to an empty folder or a dangling link
    failed with "Not a directory". Following it once, up front, makes every case an ordinary folder.
    """
    path = Path(folder).expanduser().absolute()
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def remove_dead_staging(target: Path, tag: str, *, include_own: bool = False) -> None:
    """Delete staging siblings of `target` left by a killed writer (its process is gone).

    `include_own` also deletes this process's own leftovers (when only one writer per target can
    run in a process, anything of ours still there is dead too).
    """
    if not target.parent.is_dir():
        return
    prefix = f".{target.name}{tag}"
    for leftover in target.parent.iterdir():
        if not leftover.name.startswith(prefix) or not leftover.is_dir():
            continue
        pid_text = leftover.name[len(prefix) :].split("-", 1)[0]
        dead = not (pid_text.isascii() and pid_text.isdigit()) or not staging_registry.pid_alive(
            int(pid_text)
        )
        if dead or (include_own and int(pid_text) == os.getpid()):
            shutil.rmtree(leftover, ignore_errors=True)


def flush_tree(folder: Path) -> None:
    """Make every staged file durable before the rename publishes them (they skip per-file fsync)."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in folder.rglob("*"):  # pragma: no cover - Windows has no sync(); fsync file by file
        if path.is_file():
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())


class OutputFolder:
    """Stages one export of `dataset_format` into `target` (see the module docstring)."""

    def __init__(
        self, target: str | os.PathLike[str], dataset_format: str, disposable: tuple[str, ...] = ()
    ) -> None:
        self.target = follow_out_link(target)
        self.dataset_format = dataset_format
        self.disposable = disposable  # glob patterns of files readers add (caches), dropped on re-export
        self.previous: dict[str, Any] | None = None
        self.staging: Path | None = None
        self._recover()
        self._check_target()

    # -- before -------------------------------------------------------------------------------

    def _siblings(self, tag: str) -> list[Path]:
        parent = self.target.parent
        if not parent.is_dir():
            return []
        prefix = f".{self.target.name}{tag}"
        return [p for p in parent.iterdir() if p.name.startswith(prefix)]

    def _recover(self) -> None:
        """Clean up after a crash: restore a swapped-out export, delete dead staging folders."""
        for old in self._siblings(_OLD_TAG):
            if (
                old.is_symlink()
            ):  # left by an export into a linked --out: removing a link removes nothing else
                old.unlink()
            elif not self.target.exists():
                os.replace(old, self.target)
            else:
                shutil.rmtree(old, ignore_errors=True)
        remove_dead_staging(self.target, _TMP_TAG, include_own=True)

    def _check_target(self) -> None:
        target = self.target
        if target.exists() and not target.is_dir():
            raise ExportError(f"{target} is a file; choose a folder to export into")
        refuse_mount_point(target, "export")
        if not target.is_dir() or not any(target.iterdir()):
            return
        manifest = read_manifest(target)
        if manifest is None:
            raise ExportError(
                f"{target} is not empty and is not a SegStudio export; choose an empty or new folder "
                "(SegStudio only overwrites folders it exported itself)"
            )
        if manifest.get("dataset_format") != self.dataset_format:
            raise ExportError(
                f"{target} holds a SegStudio {manifest.get('dataset_format')!r} export; choose another folder for "
                f"the {self.dataset_format!r} export, or delete that folder first"
            )
        listed = _listed_files(manifest)
        foreign = []
        for path in target.rglob("*"):
            if path.is_file() or path.is_symlink():
                rel = path.relative_to(target).as_posix()
                if rel not in listed and not any(
                    fnmatch.fnmatchcase(rel, pattern) for pattern in self.disposable
                ):
                    foreign.append(rel)
        if foreign:
            shown = ", ".join(sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
            raise ExportError(
                f"{target} contains {len(foreign)} file(s) SegStudio did not write ({shown}); the export replaces "
                "the whole folder, so move them elsewhere or choose another folder"
            )
        self.previous = manifest

    # -- during -------------------------------------------------------------------------------

    def __enter__(self) -> OutputFolder:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging = make_staging_dir(self.target, _TMP_TAG)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        self.staging = None

    def reuse(self, files: list[str]) -> bool:
        """Hard-link (or copy) `files` from the previous export into staging; False if any is missing.

        The list comes from the old manifest, so each file must be a plain file really inside the
        old export (no '..', no absolute path, no symlink: SegStudio never writes one) and lands
        inside staging; anything else means "not reusable" and the image is written afresh.
        """
        assert self.staging is not None
        try:
            pairs = [
                (resolve_inside(self.target, f, strict=True), resolve_inside(self.staging, f)) for f in files
            ]
        except UnsafePathError:
            return False
        if not all(source.is_file() and not source.is_symlink() for source, _ in pairs):
            return False
        for source, dest in pairs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, dest, follow_symlinks=False)
            except OSError:
                shutil.copy2(source, dest, follow_symlinks=False)
        return True

    # -- after --------------------------------------------------------------------------------

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest and swap the staged folder into place."""
        assert self.staging is not None
        atomic_write_json(self.staging / MANIFEST_NAME, {"format": MANIFEST_FORMAT, **manifest})
        flush_tree(self.staging)
        target = self.target
        backup = None
        if target.exists():
            if any(target.iterdir()):
                backup = target.parent / f".{target.name}{_OLD_TAG}{uuid.uuid4().hex[:8]}"
                os.replace(target, backup)
            else:
                target.rmdir()
        os.replace(self.staging, target)
        self.staging = None
        fsync_dir(target.parent)
        if backup is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(backup)
