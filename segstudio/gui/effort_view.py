"""Effort telemetry in the app: a tracker fed by the editing tools, and the Train -> Effort view.

The tracker keeps one `core.effort.EffortClock` for the open image (every tool press is an
action, every drag step keeps the clock running) and adds it to the project when another image
opens or the project closes, with the changed-pixel fraction versus the prediction.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from segstudio.core.effort import EffortClock, summarize_by_engine, summarize_effort
from segstudio.core.errors import SegStudioError

__all__ = ["EffortDialog", "EffortTracker"]


class EffortTracker(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clock = EffortClock()
        self._target: tuple[Any, Any, Any] | None = None  # (project, record, document)

    def action(self, tool: str) -> None:
        if self._target is not None:
            self.clock.action(tool, time.monotonic())

    def touch(self, *_: object) -> None:
        if self._target is not None:
            self.clock.touch(time.monotonic())

    def attach(self, project: Any, record: Any, document: Any) -> None:
        """Flush the previous image's effort, then track this one (None: track nothing)."""
        self.flush()
        self._target = (project, record, document) if project is not None and record is not None else None

    def flush(self) -> None:
        if self._target is None or self.clock.empty:
            self.clock.take()
            return
        project, record, document = self._target
        seconds, actions = self.clock.take()
        fraction = document.diff_fraction() if document is not None else None
        try:
            project.add_effort(record, seconds, actions, fraction)
        except SegStudioError:
            pass  # telemetry must never get in the way of editing (e.g. a read-only project)


class EffortDialog(QDialog):
    """Median active seconds and actions per done image, per model version (as `info --effort`),
    and per smart-tool engine (`core.effort.summarize_by_engine`): which tool pays in this project."""

    ENGINE_COLUMNS = (
        "Engine",
        "Actions",
        "Share",
        "Images used on",
        "Images mainly",
        "Median actions (mainly)",
        "Median seconds (mainly)",
    )

    COLUMNS = (
        "Model version",
        "Done images",
        "Median seconds",
        "Median actions",
        "Median changed",
        "Actions by tool",
    )

    def __init__(self, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Editing effort")
        tracker = getattr(parent, "effort", None)
        if isinstance(tracker, EffortTracker):
            tracker.flush()  # include the image being edited
        groups = summarize_effort(project.effort_rows())
        self.table = QTableWidget(len(groups), len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        for row, g in enumerate(groups):
            changed = "-" if g["median_changed_fraction"] is None else f"{g['median_changed_fraction']:.1%}"
            cells = (
                g["model_version"] or "(no prediction)",
                str(g["images"]),
                f"{g['median_seconds']:.0f}",
                f"{g['median_actions']:g}",
                changed,
                ", ".join(f"{k} {v}" for k, v in g["actions_by_tool"].items()),
            )
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        rows = project.effort_rows()
        engines = summarize_by_engine(rows)
        self.engine_table = QTableWidget(len(engines), len(self.ENGINE_COLUMNS), self)
        self.engine_table.setHorizontalHeaderLabels(self.ENGINE_COLUMNS)
        for row, e in enumerate(engines):
            cells = (
                e["engine"],
                str(e["actions"]),
                f"{e['share']:.0%}",
                str(e["images_used"]),
                str(e["images_mainly"]),
                "-" if e["median_actions_mainly"] is None else f"{e['median_actions_mainly']:g}",
                "-" if e["median_seconds_mainly"] is None else f"{e['median_seconds_mainly']:.0f}",
            )
            for col, text in enumerate(cells):
                self.engine_table.setItem(row, col, QTableWidgetItem(text))
        self.engine_table.resizeColumnsToContents()
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Per done image; idle gaps over 20 s are not counted. A model version that "
                "needs fewer seconds and actions is paying off.",
                self,
            )
        )
        layout.addWidget(self.table)
        layout.addWidget(
            QLabel(
                "Per engine (click, box and scribble count under the engine they used; brush, eraser,"
                " fill and polygon are manual). 'Mainly': images where that engine had the most"
                " actions; fewer median actions and seconds there means the engine pays.",
                self,
            )
        )
        layout.addWidget(self.engine_table)
        self.resize(760, 420)
