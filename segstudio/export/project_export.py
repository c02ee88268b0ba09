"""Exporting a `Project`: choose its images, check them, hand them to a format.

This is the one place that knows both the project store and the format writers; the CLI and
the GUI dialog call `check_project` and `export_project` and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segstudio.core.errors import ExportError, SegStudioError
from segstudio.core.logs import timed
from segstudio.core.project import ImageRecord, Project, Status
from segstudio.core.task_handle import NullTask, TaskHandle
from segstudio.export.checks import CheckReport, Problem, check_items
from segstudio.export.common import ExportItem, ExportOptions, assign_split
from segstudio.export.engine import ExportReport, run_export
from segstudio.export.registry import create_format

__all__ = ["check_project", "export_project", "items_from_project"]


def _loader(project: Project, rec: ImageRecord) -> Callable[[], np.ndarray | None]:
    return lambda: project.load_mask(rec)


def items_from_project(project: Project, options: ExportOptions) -> tuple[list[ExportItem], list[Problem]]:
    """The images `options.include` selects, as export items, plus warnings for unreadable ones."""
    problems: list[Problem] = []
    if options.include == "done":
        records = project.images(status=Status.DONE)
    else:
        records = [rec for rec in project.images() if rec.status != Status.SKIPPED and project.has_mask(rec)]
    items = []
    for rec in records:
        if rec.error:
            problems.append(
                Problem("warning", "unreadable", f"{rec.rel_path}: {rec.error} (skipped)", rec.rel_path)
            )
            continue
        items.append(
            ExportItem(
                rel_path=rec.rel_path,
                image_path=project.image_file(rec),
                split=assign_split(options.split, rec.split, rec.content_hash),
                load_mask=_loader(project, rec),
                content_hash=rec.content_hash,
                status=str(rec.status),
            )
        )
    return items, problems


def check_project(
    project: Project,
    dataset_format: str,
    options: ExportOptions | None = None,
    handle: TaskHandle | None = None,
) -> CheckReport:
    """The pre-export check (loads every selected mask once); never writes anything."""
    options = options or ExportOptions()
    items, problems = items_from_project(project, options)
    try:
        create_format(dataset_format, project.scheme, options, project_name=project.image_dir.name)
    except (
        SegStudioError
    ) as error:  # a format that cannot take this scheme (e.g. unmapped Cityscapes classes)
        problems.append(Problem("error", "format", str(error)))
    return check_items(items, project.scheme, problems, handle)


@timed("export")
def export_project(
    project: Project,
    dataset_format: str,
    out_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    handle: TaskHandle | None = None,
    check: CheckReport | None = None,
) -> ExportReport:
    """Check, then export atomically and incrementally; ExportError if the check found errors."""
    options = options or ExportOptions()
    handle = handle or NullTask()
    out = Path(out_dir).expanduser().absolute()
    image_dir = Path(project.image_dir).absolute()
    if out == image_dir or image_dir in out.parents:
        raise ExportError(
            f"{out} is inside the project's image folder, so the exported images would join the project; "
            "choose a folder outside it"
        )
    report = check if check is not None else check_project(project, dataset_format, options, handle)
    report.raise_for_errors()
    fmt = create_format(dataset_format, project.scheme, options, project_name=project.image_dir.name)
    result = run_export(fmt, report.exportable, out, handle)
    result.skipped.extend(
        p.rel_path for p in report.warnings if p.rel_path and p.code in ("no_mask", "unreadable")
    )
    return result
