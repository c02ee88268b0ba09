"""File -> Import...: pick a VOC / Cityscapes / labelme folder, see the class mapping, then import.

Preview reads only; nothing is written until Import is pressed (and Import stays disabled until
a preview without unmapped labels has been shown). On success `project_imported(image_dir)` is
emitted so the main window can open the new project.
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
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.schemes import get_scheme
from segstudio.export import import_common
from segstudio.export.registry import IMPORTER_TITLES, get_importer
from segstudio.gui.background_tasks import TaskState
from segstudio.gui.dialog_task import DialogTask

__all__ = ["ImportDialog"]

KINDS = list(IMPORTER_TITLES.items())
SCHEMES = [
    ("", "From the data"),
    ("voc", "Pascal VOC (21 classes)"),
    ("cityscapes", "Cityscapes (19 classes)"),
    ("camvid", "CamVid (11 classes)"),
]


def _row(path_edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(path_edit)
    row.addWidget(button)
    return row


class ImportDialog(QDialog):
    project_imported = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import dataset")
        self.plan: Any = None
        self.imported_dir: str | None = None

        self.kind_combo = QComboBox()
        for key, text in KINDS:
            self.kind_combo.addItem(text, key)
        self.scheme_combo = QComboBox()
        for key, text in SCHEMES:
            self.scheme_combo.addItem(text, key)
        self.source_edit = QLineEdit()
        self.target_edit = QLineEdit()
        source_button = QPushButton("Browse...")
        target_button = QPushButton("Browse...")
        source_button.clicked.connect(lambda: self._browse(self.source_edit, "Dataset folder"))
        target_button.clicked.connect(lambda: self._browse(self.target_edit, "New project folder"))
        form = QFormLayout()
        form.addRow("Source", self.kind_combo)
        form.addRow("Folder", _row(self.source_edit, source_button))
        form.addRow("Classes", self.scheme_combo)
        form.addRow("New project folder", _row(self.target_edit, target_button))
        self.in_place_check = QCheckBox(
            "Keep the images where they are (the labelme folder becomes the project)"
        )
        self.in_place_check.setEnabled(False)
        self.in_place_check.toggled.connect(lambda on: self.target_edit.setEnabled(not on))
        form.addRow("", self.in_place_check)
        self.outside_check = QCheckBox(
            "Also read files the dataset names outside its folder (trusted datasets only)"
        )
        self.outside_check.setToolTip(
            "Off: paths in list files, labelme imagePath or COCO file_name that leave the dataset folder are "
            "refused (listed as warnings). The copies always land inside the new project."
        )
        self.outside_check.toggled.connect(lambda _on: self._invalidate())
        form.addRow("", self.outside_check)

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Source label", "Project class", "Note"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary = QLabel("Choose a folder and press Preview to see how its labels map to classes.")
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.preview_button = QPushButton("Preview")
        self.import_button = QPushButton("Import")
        self.import_button.setEnabled(False)
        self.cancel_button = QPushButton("Close")
        self.preview_button.clicked.connect(self.run_preview)
        self.import_button.clicked.connect(self.start_import)
        self.task = DialogTask(self, self.progress, self.cancel_button, self._set_running, "segstudio-import")
        self.task.status.connect(self.summary.setText)
        self.task.failed.connect(self.summary.setText)
        self.task.cancelled.connect(lambda: self.summary.setText("Cancelled; nothing was imported."))
        self.task.finished.connect(self._on_finished)
        for widget in (self.kind_combo, self.scheme_combo):
            widget.currentIndexChanged.connect(self._invalidate)
        self.source_edit.textChanged.connect(self._invalidate)
        buttons = QHBoxLayout()
        buttons.addWidget(self.preview_button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)

    def _browse(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)

    def _invalidate(self) -> None:
        self.plan = None
        self.import_button.setEnabled(False)
        self.in_place_check.setChecked(False)
        self.in_place_check.setEnabled(False)
        self.table.setRowCount(0)

    # ------------------------------------------------------------------ preview

    def run_preview(self) -> None:
        if self.is_running():
            return
        source = self.source_edit.text().strip()
        kind = str(self.kind_combo.currentData())
        scheme_key = str(self.scheme_combo.currentData())
        allow_outside = self.outside_check.isChecked()
        if not source:
            self.summary.setText("Choose the dataset folder first.")
            return
        self._invalidate()

        def work(handle: TaskState) -> Any:
            handle.set_status("reading annotations")
            scheme = get_scheme(scheme_key) if scheme_key else None
            return get_importer(kind)(source, scheme=scheme, allow_outside=allow_outside)

        self.task.start(work, self._show_plan)

    def _show_plan(self, plan: Any) -> None:
        self.plan = plan
        self.table.setRowCount(len(plan.mapping))
        for row, entry in enumerate(plan.mapping):
            for column, text in enumerate((entry.source, entry.target_label.strip(), entry.note)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        lines = [
            f"{len(plan.samples)} annotated images; project classes: {plan.scheme.name} ({plan.scheme.num_classes})."
        ]
        if plan.unmapped:
            lines.append(f"Unmapped labels: {', '.join(plan.unmapped)}. Choose other classes to import.")
        outside = plan.outside_summary()
        if outside:
            lines.append(outside)
        lines += plan.warnings[:5]
        self.summary.setText("\n".join(lines))
        self.import_button.setEnabled(not plan.unmapped and bool(plan.samples))
        self.in_place_check.setEnabled(import_common.can_import_in_place(plan))
        if not self.target_edit.text().strip():
            self.target_edit.setText(str(Path(plan.source).parent / f"{Path(plan.source).name}_project"))

    # ------------------------------------------------------------------ import

    def start_import(self) -> None:
        if self.is_running() or self.plan is None:
            return
        plan = self.plan
        if self.in_place_check.isChecked():
            self.task.start(lambda h: import_common.import_in_place(plan, h), self._on_imported)
            return
        target = self.target_edit.text().strip()
        if not target:
            self.summary.setText("Choose a new folder for the project.")
            return
        self.task.start(lambda h: import_common.run_import(plan, target, h), self._on_imported)

    def _on_imported(self, image_dir: Any) -> None:
        self.imported_dir = str(image_dir)
        self.summary.setText(f"Imported {len(self.plan.samples)} images into {image_dir}.")
        self.project_imported.emit(self.imported_dir)

    # ------------------------------------------------------------------ plumbing

    def _set_running(self, running: bool) -> None:
        for widget in (
            self.preview_button,
            self.kind_combo,
            self.scheme_combo,
            self.source_edit,
            self.outside_check,
        ):
            widget.setEnabled(not running)
        self.target_edit.setEnabled(not running and not self.in_place_check.isChecked())
        self.in_place_check.setEnabled(
            not running and self.plan is not None and import_common.can_import_in_place(self.plan)
        )
        self.import_button.setEnabled(
            not running and self.plan is not None and not self.plan.unmapped and bool(self.plan.samples)
        )

    def _on_finished(self) -> None:
        if self.imported_dir is not None:
            self.import_button.setEnabled(False)

    def is_running(self) -> bool:
        return self.task.is_running()
