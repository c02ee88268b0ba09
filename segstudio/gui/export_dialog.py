"""File -> Export...: choose a format, split and options, check, then export off the GUI thread.

The dialog is wiring only: `segstudio.export.project_export` does the work and receives a
task state from `gui.dialog_task.DialogTask`, whose progress/status calls become queued Qt signals;
Cancel sets its flag and the export stops at the next image, leaving the output folder as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.errors import SegStudioError
from segstudio.export import project_export
from segstudio.export.common import ExportOptions
from segstudio.export.registry import FORMAT_TITLES
from segstudio.gui.background_tasks import TaskState
from segstudio.gui.dialog_task import DialogTask

__all__ = ["ExportDialog"]

FORMATS = list(FORMAT_TITLES.items())
COLOR_FORMATS = ("masks", "camvid")  # formats that can add colour PNGs of the masks
SPLITS = [
    ("project", "Project split"),
    ("train", "Everything train"),
    ("val", "Everything val"),
    ("random:0.2", "Random 20% val"),
]
INCLUDE = [("done", "Done images only"), ("mask", "All images with a mask")]


def _combo(items: list[tuple[str, str]]) -> QComboBox:
    combo = QComboBox()
    for key, text in items:
        combo.addItem(text, key)
    return combo


class ExportDialog(QDialog):
    """Export the project's masks as a dataset (see module docstring)."""

    export_finished = Signal(object)  # the ExportReport

    def __init__(self, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export dataset")
        self.project = project
        self.report: Any = None
        self.format_combo = _combo(FORMATS)
        self.split_combo = _combo(SPLITS)
        self.include_combo = _combo(INCLUDE)
        self.void_band = QSpinBox()
        self.void_band.setRange(0, 20)
        self.void_band.setSuffix(" px")
        self.void_band.setToolTip("VOC only: paint a void (255) band this wide along class boundaries")
        self.color_check = QCheckBox("Also write colour PNGs of the masks")
        self.out_edit = QLineEdit(
            str(Path(project.image_dir).parent / f"{Path(project.image_dir).name}_export")
        )
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(browse)

        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Images", self.include_combo)
        form.addRow("Split", self.split_combo)
        form.addRow("Void band", self.void_band)
        form.addRow("", self.color_check)
        form.addRow("Output folder", out_row)

        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setPlaceholderText("Press Check to list problems before exporting.")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.check_button = QPushButton("Check")
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.cancel_button = QPushButton("Close")
        self.check_button.clicked.connect(self.run_check)
        self.export_button.clicked.connect(self.start_export)
        self.task = DialogTask(self, self.progress, self.cancel_button, self._set_running, "segstudio-export")
        self.task.status.connect(self.status_label.setText)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)
        buttons = QHBoxLayout()
        buttons.addWidget(self.check_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Problems"))
        layout.addWidget(self.problems)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    # ------------------------------------------------------------------ choices

    def options(self) -> ExportOptions:
        band = self.void_band.value() if self.format_combo.currentData() == "voc" else 0
        colors = self.color_check.isChecked() and self.format_combo.currentData() in COLOR_FORMATS
        return ExportOptions(
            include=self.include_combo.currentData(),
            split=self.split_combo.currentData(),
            void_band=band,
            color_masks=colors,
        )

    def dataset_format(self) -> str:
        return str(self.format_combo.currentData())

    def _format_changed(self) -> None:
        self.void_band.setEnabled(self.format_combo.currentData() == "voc")
        self.color_check.setEnabled(self.format_combo.currentData() in COLOR_FORMATS)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)

    # ------------------------------------------------------------------ running

    def is_running(self) -> bool:
        return self.task.is_running()

    def run_check(self) -> None:
        if self.is_running():
            return
        fmt, options = self.dataset_format(), self.options()
        self.problems.setPlainText("")
        self.task.start(
            lambda h: project_export.check_project(self.project, fmt, options, h), self._on_checked
        )

    def start_export(self) -> None:
        if self.is_running():
            return
        out = self.out_edit.text().strip()
        if not out:
            self.status_label.setText("Choose an output folder.")
            return
        try:
            fmt, options = self.dataset_format(), self.options()
        except SegStudioError as error:
            self.status_label.setText(str(error))
            return
        self.report = None

        def work(handle: TaskState) -> Any:
            check = project_export.check_project(self.project, fmt, options, handle)
            return project_export.export_project(self.project, fmt, out, options, handle, check=check)

        self.task.start(work, self._on_exported)

    def cancel(self) -> None:
        self.task.cancel()

    def _set_running(self, running: bool) -> None:
        for widget in (
            self.check_button,
            self.export_button,
            self.format_combo,
            self.split_combo,
            self.include_combo,
            self.out_edit,
        ):
            widget.setEnabled(not running)
        self.void_band.setEnabled(not running and self.format_combo.currentData() == "voc")
        self.color_check.setEnabled(not running and self.format_combo.currentData() in COLOR_FORMATS)

    def _on_checked(self, report: Any) -> None:
        self.problems.setPlainText(report.summary(limit=200) or "No problems found.")
        n_err, n_warn = len(report.errors), len(report.warnings)
        self.status_label.setText(
            f"Check: {len(report.exportable)} images to export, {n_err} error(s), {n_warn} warning(s)."
        )

    def _on_exported(self, report: Any) -> None:
        self.report = report
        self.status_label.setText(
            f"Exported {report.exported} images to {report.out_dir} ({report.written} written, {report.reused} unchanged)."
        )
        self.export_finished.emit(report)

    def _on_failed(self, message: str) -> None:
        self.problems.setPlainText(message)
        self.status_label.setText("Failed: see the problems above.")

    def _on_cancelled(self) -> None:
        self.status_label.setText("Cancelled; the output folder was left as it was.")
