"""*Model → Get a SAM model…*: the known SAM checkpoints, downloaded on demand into the user cache.

A thin Qt layer over `segstudio.ml.sam_download` (which does the transfer, resume and hash check):
a table of the catalogue (name, size, licence, SHA-256, source), a progress bar, Download, Cancel
(the Close button while a transfer runs; the ``.part`` stays so Download resumes) and *Use a file…*
for a checkpoint the user already has or when offline. A verified file (or a picked one) is handed
on through `chosen`; the main window loads it as the ``sam`` engine.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.errors import SegStudioError
from segstudio.gui.background_tasks import TaskState
from segstudio.gui.dialog_task import DialogTask
from segstudio.ml import sam_download
from segstudio.ml.sam_download import SamCheckpoint

__all__ = ["SamDownloadDialog"]

COLUMNS = ("Model", "Size", "Licence", "SHA-256", "Source", "In cache")


def _size(entry: SamCheckpoint) -> str:
    return "unknown" if entry.size is None else f"{entry.size / 1e6:,.0f} MB"


class SamDownloadDialog(QDialog):
    """Lists `entries` (default: `sam_download.catalog()`) and downloads into `directory`
    (default: `sam_download.cache_dir()`)."""

    chosen = Signal(str)  # a verified downloaded checkpoint, or a file the user picked

    def __init__(
        self,
        parent: QWidget | None = None,
        entries: list[SamCheckpoint] | None = None,
        directory: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get a SAM model")
        self.directory = directory or sam_download.cache_dir()
        try:
            self.entries = entries if entries is not None else sam_download.catalog()
            problem = ""
        except SegStudioError as error:
            self.entries, problem = [], str(error)
        self.table = QTableWidget(len(self.entries), len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.status = QLabel(problem or f"Downloads go to {self.directory}", self)
        self.status.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.download_button = QPushButton("Download", self)
        self.file_button = QPushButton("Use a file…", self)
        self.close_button = QPushButton("Close", self)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.file_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.task = DialogTask(
            self, self.progress, self.close_button, self._set_busy, "segstudio-sam-download"
        )
        self.task.status.connect(self.status.setText)
        self.task.failed.connect(self._failed)
        self.task.cancelled.connect(self._cancelled)
        self.download_button.clicked.connect(self._download)
        self.file_button.clicked.connect(self._use_file)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._fill()
        if self.entries:
            self.table.selectRow(next((i for i, e in enumerate(self.entries) if e.verified), 0))
        self.resize(900, 320)

    def _fill(self) -> None:
        for row, entry in enumerate(self.entries):
            cached = sam_download.cached_path(entry, self.directory) is not None
            part = (self.directory / (entry.filename + ".part")).is_file()
            cells = (
                entry.name,
                _size(entry),
                entry.licence,
                entry.sha256 or "unknown: not downloadable here",
                entry.url,
                "yes" if cached else ("partial" if part else ""),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()

    def selected(self) -> SamCheckpoint | None:
        rows = self.table.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows else None

    def _selection_changed(self) -> None:
        entry = self.selected()
        self.download_button.setEnabled(entry is not None and entry.verified and not self.task.is_running())
        if entry is not None and not entry.verified:
            self.status.setText(
                f"{entry.name} has no published SHA-256 we could verify; download it from {entry.url}"
                " yourself and choose Use a file…"
            )

    def _set_busy(self, busy: bool) -> None:
        self.table.setEnabled(not busy)
        self.file_button.setEnabled(not busy)
        entry = self.selected()
        self.download_button.setEnabled(not busy and entry is not None and entry.verified)

    def _download(self) -> None:
        entry = self.selected()
        if entry is None or not entry.verified:
            return
        directory = self.directory
        self.status.setText(f"Downloading {entry.name} from {entry.url}…")

        def work(state: TaskState) -> str:
            def progress(done: int, total: int | None) -> None:
                # KiB: Qt's progress signal is 32-bit and ViT-H is 2.5 GB
                state.set_progress(done >> 10, (total or done) >> 10)

            return str(sam_download.download(entry, directory, progress, should_stop=state.is_cancelled))

        self.task.start(work, on_done=self._downloaded)

    def _downloaded(self, path: str) -> None:
        self._fill()
        self.status.setText(f"Verified {Path(path).name}; loading it as the SAM engine.")
        self.chosen.emit(path)
        self.accept()

    def _cancelled(self) -> None:
        self._fill()
        self.status.setText("Cancelled; the partial file is kept and Download resumes it.")

    def _failed(self, message: str) -> None:
        self._fill()
        self.status.setText(message.splitlines()[0])

    def _use_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "SAM checkpoint (SAM ViT-B/L/H .pth or MobileSAM .pt)", "", "Checkpoints (*.pth *.pt)"
        )
        if path:
            self.chosen.emit(path)
            self.accept()

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.download_button.isEnabled():
            self.download_button.click()
            return
        super().keyPressEvent(event)
