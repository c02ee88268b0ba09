"""One level of undo for removing or merging a class (`core.scheme_edit.remove_class`).

Why: merging class A into B rewrites every mask, and afterwards nothing says which pixels were A.
Before the rewrite, the files it changes are copied into `STATE/scheme-undo/` with a manifest (the
scheme before and after, and the hash of each rewritten file). Undo puts the old scheme back and,
per label file:

* rewritten by the merge and untouched since: its copy comes back byte for byte (A's pixels return);
* saved or changed after the merge: it keeps its content and is renumbered to the old scheme (the
  classes after the removed one move up again); pixels merged into B stay B - said in the summary.

The copies are taken before any file is replaced, and the manifest is written last, so a crash
leaves either no undo or a complete one. Only the latest class removal can be undone. Stored class
probabilities (for the CRF) are not kept: they come back when the images are predicted again.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core import masks as mask_io
from segstudio.core.atomic import atomic_write_bytes, atomic_write_json, fsync_dir
from segstudio.core.errors import SchemeError
from segstudio.core.probabilities import delete_probabilities
from segstudio.core.safe_json import load_json_file
from segstudio.core.schemes import LabelScheme

__all__ = ["UNDO_DIR", "UndoSummary", "keep_for_undo", "label_files", "undo_available", "undo_remove_class"]

UNDO_DIR = "scheme-undo"
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class UndoSummary:
    """What an undo did, for the status bar."""

    restored: int  # files back byte for byte
    renumbered: int  # files changed after the merge: renumbered, merged pixels kept as the target class
    scheme: LabelScheme


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def label_files(project: Any) -> list[tuple[Any, Path]]:
    """(record, path) of every mask, prediction and raw-prediction file of the project."""
    files = []
    for rec in project.images():
        for path in (project.mask_path(rec), project.prediction_path(rec), project.raw_prediction_path(rec)):
            if path.is_file():
                files.append((rec, path))
    return files


def keep_for_undo(project: Any, source: int, after: LabelScheme, rewrites: list[tuple[Path, Path]]) -> None:
    """Copy each (staged new file, original) pair's original aside, before anything is replaced."""
    state = Path(project.state_dir)
    folder = state / UNDO_DIR
    building = state / (UNDO_DIR + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    files: dict[str, str] = {}
    for n, (staged, original) in enumerate(rewrites):
        copy = building / f"{n}.png"
        atomic_write_bytes(copy, original.read_bytes())
        files[str(original.relative_to(state))] = _digest(staged)
    atomic_write_json(
        building / _MANIFEST,
        {
            "before": project.scheme.to_dict(),
            "after": after.to_dict(),
            "source": source,
            "files": files,
        },
    )
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    fsync_dir(state)


def _manifest(project: Any) -> dict[str, Any] | None:
    path = Path(project.state_dir) / UNDO_DIR / _MANIFEST
    if not path.is_file():
        return None
    try:
        data = load_json_file(path, SchemeError)
        LabelScheme.from_dict(data["after"])
        LabelScheme.from_dict(data["before"])
    except (SchemeError, KeyError, TypeError):
        return None
    return data if isinstance(data.get("files"), dict) and isinstance(data.get("source"), int) else None


def undo_available(project: Any) -> str | None:
    """The removed class's name when the latest class removal can still be undone, else None."""
    data = _manifest(project)
    if data is None or LabelScheme.from_dict(data["after"]) != project.scheme:
        return None
    before = LabelScheme.from_dict(data["before"])
    source = data["source"]
    return before.names[source] if 0 <= source < before.num_classes else None


def undo_remove_class(project: Any) -> UndoSummary:
    """Put the scheme and the label files back as they were before the latest class removal."""
    data = _manifest(project)
    if data is None or LabelScheme.from_dict(data["after"]) != project.scheme:
        raise SchemeError("there is no class removal to undo (the scheme changed since, or none was made)")
    state = Path(project.state_dir)
    folder = state / UNDO_DIR
    before = LabelScheme.from_dict(data["before"])
    source: int = data["source"]
    kept = {rel: (folder / f"{n}.png", digest) for n, (rel, digest) in enumerate(data["files"].items())}
    renumber = np.arange(256, dtype=np.uint8)  # new index -> old index: classes from `source` move up
    renumber[source : before.num_classes - 1] += 1
    restored = renumbered = 0
    for _rec, path in label_files(project):
        rel = str(path.relative_to(state))
        copy, digest = kept.get(rel, (None, None))
        if copy is not None and copy.is_file() and _digest(path) == digest:
            atomic_write_bytes(path, copy.read_bytes())
            restored += 1
            continue
        labels = mask_io.load_mask(path)
        moved = renumber[labels]
        if not np.array_equal(moved, labels):
            mask_io.save_mask(path, moved, mask_io.read_image_hash(path))
        if copy is not None:
            renumbered += 1
    for rec in project.images():  # probabilities are per class of the scheme that is going away
        delete_probabilities(project, rec.id)
    project.set_scheme(before)
    with contextlib.suppress(OSError):
        shutil.rmtree(folder)
    return UndoSummary(restored, renumbered, before)
