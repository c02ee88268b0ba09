"""File -> Export...: choose a format, split and options, check, then export off the GUI thread.

The dialog is wiring only: `segstudio.export.project_export` does the work and receives a
`SignalTaskHandle`, whose progress/status calls become queued Qt signals; Cancel sets its flag
and the export stops at the next image, leaving the output folder as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
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

from segstudio.core.errors import CancelledError, SegStudioError
from segstudio.core.tasks import NullTask
from segstudio.export import project_export
from segstudio.export.common import ExportOptions
from segstudio.export.registry import FORMAT_TITLES

__all__ = ["ExportDialog", "SignalTaskHandle", "TaskThread"]

FORMATS = list(FORMAT_TITLES.items())
COLOR_FORMATS = ("masks", "camvid")  # formats that can add colour PNGs of the masks
SPLITS = [("project", "Project split"), ("train", "Everything train"), ("val", "Everything val"), ("random:0.2", "Random 20% val")]
INCLUDE = [("done", "Done images only"), ("mask", "All images with a mask")]


class SignalTaskHandle(QObject):
    """A `core.tasks.TaskHandle` for worker threads: calls become queued signals, cancel is a flag."""

    progress = Signal(int, int)
    status = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._flag = NullTask()  # the cancel flag and its check, shared with every other handle

    def set_status(self, message: str) -> None:
        self.status.emit(message)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.emit(int(done), int(total))

    def cancel(self) -> None:
        self._flag.cancel()

    def is_cancelled(self) -> bool:
        return self._flag.is_cancelled()

    def check_cancelled(self) -> None:
        self._flag.check_cancelled()


class TaskThread(QThread):
    """Runs `work(handle)` once; reports the outcome as exactly one of three queued signals."""

    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, work: Callable[[SignalTaskHandle], Any], handle: SignalTaskHandle, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self.handle = handle

    def run(self) -> None:
        try:
            result = self._work(self.handle)
        except CancelledError:
            self.cancelled.emit()
        except SegStudioError as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - a bug must reach the user, not kill the thread silently
            self.failed.emit(f"unexpected error: {type(error).__name__}: {error}")
        else:
            self.succeeded.emit(result)


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
        self._thread: TaskThread | None = None

        self.format_combo = _combo(FORMATS)
        self.split_combo = _combo(SPLITS)
        self.include_combo = _combo(INCLUDE)
        self.void_band = QSpinBox()
        self.void_band.setRange(0, 20)
        self.void_band.setSuffix(" px")
        self.void_band.setToolTip("VOC only: paint a void (255) band this wide along class boundaries")
        self.color_check = QCheckBox("Also write colour PNGs of the masks")
        self.out_edit = QLineEdit(str(Path(project.image_dir).parent / f"{Path(project.image_dir).name}_export"))
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
        self.cancel_button.clicked.connect(self._cancel_or_close)
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
            include=self.include_combo.currentData(), split=self.split_combo.currentData(), void_band=band, color_masks=colors
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
        return self._thread is not None

    def _start(self, work: Callable[[SignalTaskHandle], Any], on_success: Callable[[Any], None]) -> None:
        handle = SignalTaskHandle()
        handle.progress.connect(self._on_progress)
        handle.status.connect(self.status_label.setText)
        thread = TaskThread(work, handle, self)
        thread.succeeded.connect(on_success)
        thread.failed.connect(self._on_failed)
        thread.cancelled.connect(self._on_cancelled)
        thread.finished.connect(self._on_thread_finished)
        self._thread = thread
        self._set_running(True)
        thread.start()

    def run_check(self) -> None:
        if self.is_running():
            return
        fmt, options = self.dataset_format(), self.options()
        self.problems.setPlainText("")
        self._start(lambda h: project_export.check_project(self.project, fmt, options, h), self._on_checked)

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

        def work(handle: SignalTaskHandle) -> Any:
            check = project_export.check_project(self.project, fmt, options, handle)
            return project_export.export_project(self.project, fmt, out, options, handle, check=check)

        self._start(work, self._on_exported)

    def cancel(self) -> None:
        if self._thread is not None:
            self._thread.handle.cancel()
            self.status_label.setText("Cancelling...")

    def _cancel_or_close(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self.reject()

    def _set_running(self, running: bool) -> None:
        for widget in (self.check_button, self.export_button, self.format_combo, self.split_combo, self.include_combo, self.out_edit):
            widget.setEnabled(not running)
        self.void_band.setEnabled(not running and self.format_combo.currentData() == "voc")
        self.color_check.setEnabled(not running and self.format_combo.currentData() in COLOR_FORMATS)
        self.cancel_button.setText("Cancel" if running else "Close")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_checked(self, report: Any) -> None:
        self.problems.setPlainText(report.summary(limit=200) or "No problems found.")
        n_err, n_warn = len(report.errors), len(report.warnings)
        self.status_label.setText(f"Check: {len(report.exportable)} images to export, {n_err} error(s), {n_warn} warning(s).")

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
        self.progress.setValue(0)
        self.status_label.setText("Cancelled; the output folder was left as it was.")

    def _on_thread_finished(self) -> None:
        if self._thread is not None:
            self._thread.wait()
        self._thread = None
        self._set_running(False)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._thread is not None:
            self._thread.handle.cancel()
            self._thread.wait()
        super().closeEvent(event)

    def reject(self) -> None:
        if self._thread is not None:
            self._thread.handle.cancel()
            self._thread.wait()
        super().reject()
