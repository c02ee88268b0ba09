"""The image folder is live: files added, removed or renamed on disk while the project is open.

A `QFileSystemWatcher` on the image folder and its sub-folders (not the project's state folder)
starts a debounced rescan; File -> Rescan folder starts one at once. A rescan is the store's
own `Project.reconcile()` (it follows renames and moves by content hash, keeps masks of removed
images for when they come back), run on the GUI's task helper (`gui.background_tasks.TaskRunner`) so a big
folder never freezes the editor; the window applies the report it emits. Rescans never overlap
(two reconciles of one project at once would race): a request during a scan runs once after it.

Why one follow-up rescan after a change: a file still being copied may be seen half-written
(unreadable); the folder does not change again when the copy completes, so a rescan a couple of
seconds later picks up the finished file (cheap: unchanged files are only stat'ed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from segstudio.core.logs import log_exception
from segstudio.core.project import Project
from segstudio.gui.background_tasks import TaskRunner, TaskState

__all__ = ["FolderWatcher", "watched_folders"]

MAX_WATCHED = 2000  # inotify watches are a per-user system resource: leave plenty for other programs


def watched_folders(root: Path, exclude: Path, limit: int = MAX_WATCHED) -> list[str]:
    """The folder and its non-hidden sub-folders (what the scan reads), without `exclude`'s subtree."""
    skip = os.path.normcase(os.path.abspath(exclude))
    found: list[str] = []
    for directory, subdirs, _files in os.walk(root):
        subdirs[:] = [
            d
            for d in subdirs
            if not d.startswith(".")
            and d != "__MACOSX"
            and os.path.normcase(os.path.abspath(os.path.join(directory, d))) != skip
        ]
        found.append(directory)
        if len(found) >= limit:
            break
    return found


class FolderWatcher(QObject):
    """Watches one project's image folder; `changed(report)` after a rescan that found something."""

    changed = Signal(object)  # core.project.ReconcileReport (only when `report.anything`)
    failed = Signal(str)

    def __init__(
        self, project: Project, parent: QObject | None = None, debounce_ms: int = 500, settle_ms: int = 2500
    ) -> None:
        super().__init__(parent)
        self.project = project
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self.schedule)
        self._debounce = QTimer(self, singleShot=True, interval=debounce_ms)
        self._debounce.timeout.connect(self.rescan)
        self._settle = QTimer(self, singleShot=True, interval=settle_ms)
        self._settle.timeout.connect(self.rescan)
        self._runner = TaskRunner(self, name="segstudio-rescan")
        self._again = False  # a change arrived while a scan was running
        self._closed = False
        self._start(scan=False)  # only lists the folders to watch (the opener has just reconciled)

    def schedule(self, _path: str = "") -> None:
        """Something changed on disk: rescan once things have been quiet for a moment."""
        if not self._closed:
            self._debounce.start()

    def rescan(self) -> None:
        """Rescan now (in the background); a request during a scan runs once more after it."""
        if self._closed:
            return
        if self._runner.is_running():
            self._again = True
            return
        self._start(scan=True)

    def _start(self, scan: bool) -> None:
        project = self.project

        def run(_state: TaskState) -> tuple[Any, list[str], str]:
            report: Any = None
            error = ""
            try:
                if scan and not project.closed:
                    report = project.reconcile()
                folders = watched_folders(project.image_dir, project.state_dir)
            except Exception as exc:
                log_exception("rescan", exc)
                folders, error = [], f"rescanning {project.image_dir} failed: {exc}"
            return report, folders, error

        self._runner.start(run, on_done=lambda outcome: self._finished(*outcome))

    def _finished(self, report: Any, folders: list[str], error: str) -> None:
        if self._closed:
            return
        if error:
            self.failed.emit(error)
        if folders:
            current = set(self._watcher.directories())
            gone = [d for d in current if d not in set(folders)]
            if gone:
                self._watcher.removePaths(gone)
            new = [d for d in folders if d not in current]
            if new:
                self._watcher.addPaths(new)
        if report is not None and report.anything:
            self.changed.emit(report)
            if report.added or report.changed or report.restored:
                self._settle.start()
        if self._again:
            self._again = False
            self.rescan()

    def close(self) -> None:
        """Stop watching and wait for a running scan (the project is about to close)."""
        self._closed = True
        self._debounce.stop()
        self._settle.stop()
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self._runner.wait(timeout=60)
        self._runner.abandon()  # its report, if it still comes, is dropped
