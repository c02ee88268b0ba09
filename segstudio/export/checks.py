"""Pre-export check: the problems a user should see before a dataset is written.

Errors block the export (unknown class indices, classes a format cannot map, nothing to export);
warnings are listed and the affected images skipped or exported as they are (images without a
mask or with an unreadable file, masks with no labelled pixel, a split with no val image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from segstudio.core.errors import ExportError, SegStudioError
from segstudio.core.schemes import UNLABELED, LabelScheme
from segstudio.core.task_handle import NullTask, TaskHandle
from segstudio.export.common import ExportItem

__all__ = ["CheckReport", "Problem", "check_items"]


#: model predictions alone are never exported (they are not ground truth): say how they become masks
NOTHING_TO_EXPORT = (
    "nothing to export: no selected image has a corrected mask. Model predictions are not exported until "
    "you correct or accept them (in the app: paint on the image, or press A to accept the prediction), then "
    "mark images done (D), or include every image with a mask (--include mask, or 'All images with a mask' "
    "in the export dialog)"
)


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    code: str  # no_mask | unreadable | unknown_class | empty_mask | no_val | no_items | format
    message: str
    rel_path: str | None = None


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    exportable: list[ExportItem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def summary(self, limit: int = 10) -> str:
        lines = [f"{p.severity}: {p.message}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        if self.errors:
            shown = "\n".join(f"  - {p.message}" for p in self.errors[:10])
            more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
            raise ExportError(f"the export cannot start; fix these problems first:\n{shown}{more}")


def check_items(
    items: Sequence[ExportItem],
    scheme: LabelScheme,
    extra: Sequence[Problem] = (),
    handle: TaskHandle | None = None,
) -> CheckReport:
    """Load every mask once and list problems; `exportable` keeps the items that have a mask."""
    handle = handle or NullTask()
    report = CheckReport(problems=list(extra))
    valid = np.zeros(256, dtype=bool)
    valid[: scheme.num_classes] = True
    valid[UNLABELED] = True
    handle.set_status("checking masks")
    for done, item in enumerate(items, start=1):
        handle.check_cancelled()
        try:
            mask = item.load_mask()
        except SegStudioError as error:
            report.problems.append(
                Problem("warning", "unreadable", f"{item.rel_path}: {error} (skipped)", item.rel_path)
            )
            continue
        if mask is None:
            report.problems.append(
                Problem("warning", "no_mask", f"{item.rel_path} has no mask (skipped)", item.rel_path)
            )
            continue
        report.exportable.append(item)
        counts = np.bincount(mask.ravel(), minlength=256)
        unknown = np.flatnonzero((counts > 0) & ~valid)
        if unknown.size:
            report.problems.append(
                Problem(
                    "error",
                    "unknown_class",
                    f"{item.rel_path} uses class indices {', '.join(map(str, unknown.tolist()))} that scheme "
                    f"{scheme.name!r} does not define (it has {scheme.num_classes}); repaint them or extend the scheme",
                    item.rel_path,
                )
            )
        if counts[UNLABELED] == mask.size:
            report.problems.append(
                Problem("warning", "empty_mask", f"{item.rel_path} has no labelled pixel", item.rel_path)
            )
        handle.set_progress(done, len(items))
    if not report.exportable:
        report.problems.append(Problem("error", "no_items", NOTHING_TO_EXPORT))
    elif not any(item.split == "val" for item in report.exportable):
        report.problems.append(
            Problem(
                "warning",
                "no_val",
                "the split has no val images; set some images to val or choose a random split",
            )
        )
    return report
