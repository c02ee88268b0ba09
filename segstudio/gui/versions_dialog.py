"""Model > Versions: every fine-tuned version with its metrics; roll back by making an older one active."""

from __future__ import annotations

import datetime as _dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.errors import SegStudioError
from segstudio.core.project import Project

__all__ = ["COLUMNS", "VersionsDialog"]

COLUMNS = ("Version", "Active", "Architecture", "Val mIoU", "Pixel acc.", "FWIoU", "Parent", "Created")


def _pct(value: object) -> str:
    return f"{100 * float(value):.1f}%" if isinstance(value, (int, float)) else "n/a"


class VersionsDialog(QDialog):
    """Lists the project's model versions (newest first); "Use selected version" rolls back or forward."""

    version_activated = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.setWindowTitle("Model versions")
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda item: self.activate_selected())
        layout.addWidget(self.table)
        self.message = QLabel("")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.use_button = QPushButton("Use selected version")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.activate_selected)
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 360)
        self.reload()

    def reload(self) -> None:
        versions = list(reversed(self.project.model_versions()))
        active = self.project.active_model_version()
        active_name = active.version if active is not None else None
        self.table.setRowCount(len(versions))
        for row, mv in enumerate(versions):
            metrics = mv.metrics if isinstance(mv.metrics, dict) else {}
            created = _dt.datetime.fromtimestamp(mv.created_at).strftime("%Y-%m-%d %H:%M")
            values = (
                mv.version,
                "yes" if mv.version == active_name else "",
                mv.arch,
                _pct(metrics.get("miou")),
                _pct(metrics.get("pixel_accuracy")),
                _pct(metrics.get("fwiou")),
                mv.parent or "",
                created,
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, mv.version)
                item.setToolTip(str(mv.checkpoint_path))
                self.table.setItem(row, col, item)
        if not versions:
            self.message.setText("No model versions yet: use Train > Fine-tune to create one.")
        self._selection_changed()

    def selected_version(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select_version(self, version: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == version:
                self.table.selectRow(row)
                return

    def _selection_changed(self) -> None:
        self.use_button.setEnabled(self.selected_version() is not None)

    def activate_selected(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        try:
            self.project.set_active_model_version(version)
        except SegStudioError as error:
            self.message.setText(str(error))
            return
        self.message.setText(f"Now using model {version}.")
        self.reload()
        self.select_version(version)
        self.version_activated.emit(version)
