"""The browser's context menu of a team lead: *Remove from project…* on the selected images.

Why a lead's menu only: the server lets only leads remove images (schema 7), so others are not offered
an action that would be refused. The browser lets a lead select several images (Ctrl/Shift-click);
removal asks for confirmation naming them, runs on a `TaskRunner` (the window never waits on the
network) and the list follows at once; other members' browsers follow through the live view.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractItemView, QMenu, QMessageBox

from segstudio.core.store_records import ImageRecord
from segstudio.gui.background_tasks import TaskRunner
from segstudio.gui.browser import RecordRole

__all__ = ["NAMES_SHOWN", "RemoveFromProject", "confirmation_text"]

#: The confirmation names this many images, then says how many more.
NAMES_SHOWN = 12


def confirmation_text(records: list[ImageRecord]) -> str:
    names = "\n".join(f"  {r.rel_path}" for r in records[:NAMES_SHOWN])
    more = f"\n  … and {len(records) - NAMES_SHOWN} more" if len(records) > NAMES_SHOWN else ""
    return (
        f"Remove {len(records)} image(s) from the team project?\n\n{names}{more}\n\n"
        "They leave every member's browser, queue, export and training. Their masks, versions, reviews "
        "and effort are kept: `segstudio team restore` brings them back exactly."
    )


class RemoveFromProject(QObject):
    """Installs the context menu on the window's browser; `stop()` takes it away again."""

    def __init__(self, presence: Any) -> None:
        super().__init__(presence)
        self.presence = presence
        self.window = presence.window
        self.project = presence.project
        self.view = self.window.browser.view
        self._mode = self.view.selectionMode()
        self._policy = self.view.contextMenuPolicy()
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self.show_menu)
        self.menu = QMenu(self.view)
        self.remove_action = QAction("Remove from project…", self.menu)
        self.remove_action.setStatusTip(
            "Leads: hide the selected images from the team project (nothing saved is lost)"
        )
        self.remove_action.triggered.connect(self.remove_selected)
        self.menu.addAction(self.remove_action)
        # the server round trip runs off the GUI thread; its outcome arrives as a queued signal
        self._runner = TaskRunner(self, "segstudio-team-remove")
        self._runner.done.connect(self._on_removed)
        self._runner.failed.connect(self._on_failed)
        self._chosen: list[ImageRecord] = []

    def selected(self) -> list[ImageRecord]:
        """The selected images, in list order."""
        rows = sorted(self.view.selectionModel().selectedRows(), key=lambda index: index.row())
        return [rec for rec in (index.data(RecordRole) for index in rows) if rec is not None]

    def show_menu(self, pos: QPoint) -> None:
        """Right-click: on an image outside the selection, that image alone (as file managers do)."""
        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.selectionModel().select(index, self.view.selectionModel().SelectionFlag.ClearAndSelect)
        self._chosen = self.selected()
        count = len(self._chosen)
        self.remove_action.setEnabled(count > 0)
        self.remove_action.setText(
            "Remove from project…" if count <= 1 else f"Remove {count} images from project…"
        )
        self.menu.popup(self.view.viewport().mapToGlobal(pos))

    def remove_selected(self) -> None:
        records = list(self._chosen) or self.selected()
        if not records:
            return
        answer = QMessageBox.question(
            self.window,
            "Remove from project",
            confirmation_text(records),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        session = self.window.session
        if session is not None and session.record is not None and session.document is not None:
            if any(r.id == session.record.id for r in records):
                session.save()  # strokes are saved as they end; anything left goes before the image does

        self._runner.start(lambda state: self.project.remove_images(records))

    def _on_failed(self, message: str) -> None:
        self.window.statusBar().showMessage(f"Nothing was removed: {message}", 30000)

    def _on_removed(self, result: Any) -> None:
        gone = {r.id for r in result}
        records = [r for r in self.window.browser.model.records() if r.id not in gone]
        self.presence.list_changed(records)
        names = ", ".join(r.rel_path for r in result[:3]) + (" …" if len(result) > 3 else "")
        self.window.statusBar().showMessage(
            f"Removed {len(result)} image(s) from the team project ({names}); `segstudio team restore` "
            "brings them back",
            20000,
        )

    def stop(self) -> None:
        self._runner.abandon()  # a removal still on its way no longer updates this window
        self.view.customContextMenuRequested.disconnect(self.show_menu)
        self.view.setContextMenuPolicy(self._policy)
        self.view.setSelectionMode(self._mode)
