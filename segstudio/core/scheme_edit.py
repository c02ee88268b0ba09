"""Removing a class from a project's scheme: its pixels go to another class, the masks follow.

Why a module of its own: palette edits never renumber (a mask stores class indices), but deleting
or merging a class must. Every mask and stored prediction is rewritten through one lookup table
(the removed class becomes the chosen one, the classes after it move down by one, unlabeled
stays unlabeled), so no pixel silently changes meaning. The rewrite is two-phase: all new files
are written beside the old ones first, then renamed over them, then the scheme is replaced, so a
failure while writing leaves the project exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core import masks as mask_io
from segstudio.core.errors import SchemeError
from segstudio.core.probabilities import delete_probabilities
from segstudio.core.scheme_undo import keep_for_undo, label_files
from segstudio.core.schemes import LabelScheme
from segstudio.core.task_handle import NullTask, TaskHandle

__all__ = [
    "MergePlan",
    "adopt_scheme",
    "class_pixel_files",
    "has_masks",
    "merge_lut",
    "plan_merge",
    "remove_class",
]

_STAGED = ".scheme-edit.png"


@dataclass(frozen=True)
class MergePlan:
    """What removing class `source` (its pixels to `target`, or nowhere) changes, for the confirmation."""

    source: int
    target: int | None
    scheme: LabelScheme  # the scheme afterwards
    files_with_source: int  # mask and prediction files that hold pixels of `source`
    files_to_rewrite: int  # every file whose indices change (the classes after `source` move down)


def merge_lut(num_classes: int, source: int, target: int | None) -> np.ndarray:
    """uint8 table old index -> new index; indices >= num_classes (unlabeled) are kept."""
    lut = np.arange(256, dtype=np.uint8)
    lut[source + 1 : num_classes] -= 1
    if target is not None:
        lut[source] = target - (target > source)
    return lut


def class_pixel_files(project: Any, index: int) -> int:
    """How many mask or prediction files hold at least one pixel of class `index`."""
    count = 0
    for rec, path in label_files(project):
        if np.any(mask_io.load_mask(path, rec.shape) == index):
            count += 1
    return count


def plan_merge(project: Any, source: int, target: int | None) -> MergePlan:
    """Check the request and describe it; SchemeError says what to choose instead."""
    scheme = project.scheme
    n = scheme.num_classes
    if not 0 <= source < n:
        raise SchemeError(f"class {source} does not exist (the scheme has {n} classes)")
    if n < 2:
        raise SchemeError("a scheme needs at least one class; add another class before removing this one")
    if target is not None and (not 0 <= target < n or target == source):
        raise SchemeError("merge a class into another existing class")
    classes = tuple(c for i, c in enumerate(scheme.classes) if i != source)
    new_scheme = LabelScheme(scheme.name if scheme.name not in ("voc", "cityscapes") else "custom", classes)
    with_source = class_pixel_files(project, source)
    if with_source and target is None:
        raise SchemeError(
            f"class {scheme.names[source]!r} is used in {with_source} mask or prediction file(s); "
            "choose the class its pixels become (merge) before deleting it"
        )
    later = [i for i in range(source, n)]
    rewrite = sum(
        1 for rec, path in label_files(project) if np.isin(mask_io.load_mask(path, rec.shape), later).any()
    )
    return MergePlan(source, target, new_scheme, with_source, rewrite)


def remove_class(project: Any, plan: MergePlan, handle: TaskHandle | None = None) -> LabelScheme:
    """Carry out `plan`: rewrite every label file, drop stale stored probabilities, set the scheme.

    The files it changes are kept first, so `core.scheme_undo.undo_remove_class` can take it back.
    """
    handle = handle or NullTask()
    if project.scheme.num_classes != plan.scheme.num_classes + 1:
        raise SchemeError("the scheme changed since the merge was planned; try again")
    lut = merge_lut(project.scheme.num_classes, plan.source, plan.target)
    files = label_files(project)
    staged: list[tuple[Path, Path]] = []
    try:
        for done, (rec, path) in enumerate(files):
            handle.check_cancelled()
            handle.set_progress(done, len(files))
            labels = mask_io.load_mask(path, rec.shape)
            remapped = lut[labels]
            if np.array_equal(remapped, labels):
                continue
            tmp = path.with_name(path.name + _STAGED)
            mask_io.save_mask(tmp, remapped, mask_io.read_image_hash(path))  # `repair` still finds its image
            staged.append((tmp, path))
        keep_for_undo(project, plan.source, plan.scheme, staged)
    except BaseException:
        for tmp, _path in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for rec in project.images():  # per-class probability channels no longer match the scheme
        delete_probabilities(project, rec.id)
    project.set_scheme(plan.scheme)
    handle.set_progress(len(files), len(files))
    return plan.scheme


def has_masks(project: Any) -> bool:
    """Whether any image has a corrected mask (then adopting another scheme would misread it)."""
    return any(project.has_mask(rec) for rec in project.images())


def adopt_scheme(project: Any, scheme: LabelScheme) -> int:
    """Replace the scheme of a project with no masks yet (e.g. by a checkpoint's classes).

    Stored predictions hold the old class numbers: they are removed and their images return to
    *new* (the model predicts them again). Returns how many predictions were removed.
    """
    if has_masks(project):
        raise SchemeError(
            "this project already has masks in its current classes; map the checkpoint's classes by "
            "name instead, or start a new project for the checkpoint's classes"
        )
    removed = 0
    for rec in project.images():
        paths = (project.prediction_path(rec), project.raw_prediction_path(rec), project.confidence_path(rec))
        if paths[0].is_file():
            removed += 1
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        delete_probabilities(project, rec.id)
        if rec.status.value == "predicted":
            project.set_status(rec, "new")
    project.set_scheme(scheme)
    return removed
