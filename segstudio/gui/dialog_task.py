"""The one way a dialog runs its work off the GUI thread (export, import; the shape of Orange3's
`ConcurrentWidgetMixin`).

What every such dialog needs, once: `start(work, on_done)` cancels the task before it (only the
latest counts); progress goes to the dialog's bar, status to its label; results, errors and
cancels arrive as queued signals (`gui.background_tasks.TaskRunner`); the dialog's Close button
reads "Cancel" while work runs and cancels it; closing the dialog (Close, Esc, the window's X)
cancels the work and waits for it, so nothing runs on behind a closed dialog. The dialog keeps
only what is its own: which widgets are disabled while busy (`set_busy`) and what the results mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QProgressBar, QPushButton

from segstudio.gui.background_tasks import TaskRunner, TaskState

__all__ = ["DialogTask"]


class DialogTask(QObject):
    """Runs one task at a time for `dialog` (see the module docstring)."""

    status = Signal(str)
    failed = Signal(str)  # the user-facing message
    cancelled = Signal()
    finished = Signal()  # after the outcome of the current task, busy state already cleared

    def __init__(
        self,
        dialog: QDialog,
        progress: QProgressBar,
        close_button: QPushButton,
        set_busy: Callable[[bool], None],
        name: str,
    ) -> None:
        super().__init__(dialog)
        self._dialog, self._progress, self._close_button = dialog, progress, close_button
        self._set_busy = set_busy
        self.runner = TaskRunner(self, name=name)
        self.runner.progress.connect(self._on_progress)
        self.runner.status.connect(self.status)
        self.runner.failed.connect(self.failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.finished.connect(self._on_finished)
        close_button.clicked.connect(self.cancel_or_close)
        dialog.finished.connect(self.stop)  # Close, Esc and the window's X all end in QDialog.done()

    def is_running(self) -> bool:
        return self.runner.is_running()

    def start(self, work: Callable[[TaskState], Any], on_done: Callable[[Any], None]) -> None:
        """Run `work(state)` off the GUI thread (cancelling the previous task); `on_done(result)` on success."""
        self._busy(True)
        self.runner.start(work, on_done=on_done)

    def cancel(self) -> None:
        """Ask the work to stop at its next check; `cancelled` follows."""
        if self.is_running():
            self.runner.cancel()
            self.status.emit("Cancelling...")

    def cancel_or_close(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self._dialog.reject()

    def stop(self) -> None:
        """The dialog is closing: stop the work, drop what it still reports, and wait for it."""
        if self.is_running():
            self.runner.abandon()
            self.runner.wait()
            self._busy(False)

    def _busy(self, busy: bool) -> None:
        self._set_busy(busy)
        self._close_button.setText("Cancel" if busy else "Close")

    def _on_progress(self, done: int, total: int) -> None:
        self._progress.setRange(0, max(total, 1))
        self._progress.setValue(done)

    def _on_cancelled(self) -> None:
        self._progress.setValue(0)
        self.cancelled.emit()

    def _on_finished(self) -> None:
        self._busy(False)
        self.finished.emit()
