"""The window's scheme edits that touch files: load a scheme file, delete or merge a class.

Why apart from the palette: these ask the user (confirmation, which class pixels become), save
and close the open image, rewrite every mask through `core.scheme_edit`, then reopen it; the
palette only says what was asked. Nothing here changes a pixel's meaning without a Yes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMenu, QMessageBox

from segstudio.core.errors import SegStudioError
from segstudio.core.project import Status
from segstudio.core.scheme_edit import class_pixel_files, plan_merge, remove_class
from segstudio.core.scheme_undo import undo_available, undo_remove_class
from segstudio.core.schemes import LabelScheme

if TYPE_CHECKING:
    from segstudio.gui.main_window import MainWindow

__all__ = ["SchemeActions", "shifted", "unshifted"]


def shifted(indices: list[int] | set[int], removed: int) -> list[int]:
    """Palette order / hidden indices after class `removed` left the scheme (later ones move down)."""
    return [i - (i > removed) for i in indices if i != removed]


def unshifted(order: list[int], restored: int) -> list[int]:
    """Palette order after class `restored` came back: later ones move up, it sits before its successor."""
    moved = [i + (i >= restored) for i in order]
    if not moved:
        return moved  # the default order needs no entry
    at = moved.index(restored + 1) if restored + 1 in moved else len(moved)
    return [*moved[:at], restored, *moved[at:]]


class SchemeActions:
    """Palette requests that change the project's scheme, carried out for `window`."""

    def __init__(self, window: MainWindow, undo_action: QAction) -> None:
        self.window = window
        self.undo_action = undo_action
        undo_action.triggered.connect(self.undo)
        for menu in undo_action.associatedObjects():  # the scheme may change by other ways too
            if isinstance(menu, QMenu):
                menu.aboutToShow.connect(self.refresh_undo)
        self.refresh_undo()

    # -- load a scheme file ----------------------------------------------------------------------------
    def load_from_file(self) -> None:
        window = self.window
        if window.project is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            window, "Label scheme (JSON: name and classes with name, color)", "", "Label scheme (*.json)"
        )
        if not path:
            return
        try:
            scheme = LabelScheme.load(path)
        except SegStudioError as exc:
            window.show_error("Load scheme", str(exc))
            return
        window.switch_scheme(scheme, f"the scheme from {path}")

    # -- delete / merge ------------------------------------------------------------------------------
    def delete(self, index: int) -> None:
        """Delete class `index`: at once if no mask uses it, else its pixels must go to another class."""
        window = self.window
        if window.project is None:
            return
        window.flush_current()
        name = window.project.scheme.names[index]
        if class_pixel_files(window.project, index) == 0:
            answer = QMessageBox.question(
                window,
                "Delete class",
                f"Delete the class '{name}'? No mask or prediction uses it. The classes after it move "
                "up one place (their masks are rewritten to match).",
            )
            if answer == QMessageBox.StandardButton.Yes:
                self._run(index, None)
            return
        self.merge(index, title="Delete class", prompt=f"'{name}' is used in masks. Its pixels become:")

    def merge(self, index: int, title: str = "Merge class", prompt: str | None = None) -> None:
        """Merge class `index` into a class the user picks, after a confirmation naming what changes."""
        window = self.window
        if window.project is None or window.project.scheme.num_classes < 2:
            return
        window.flush_current()
        names = window.project.scheme.names
        others = [n for i, n in enumerate(names) if i != index]
        choice, ok = QInputDialog.getItem(
            window, title, prompt or f"Merge '{names[index]}' into:", others, 0, False
        )
        if not ok or choice not in others:
            return
        target = names.index(choice)
        try:
            plan = plan_merge(window.project, index, target)
        except SegStudioError as exc:
            window.show_error(title, str(exc))
            return
        answer = QMessageBox.question(
            window,
            title,
            f"Every pixel of '{names[index]}' becomes '{choice}' in {plan.files_with_source} mask or "
            f"prediction file(s), and '{names[index]}' leaves the scheme. Edit → Undo class removal "
            "takes it back until the scheme changes again (the undo history of open images is "
            "cleared). Continue?",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._run(index, target)

    def close_current(self) -> str | None:
        """Save and close the open image before its files are rewritten; returns its path."""
        session = self.window.session
        assert session is not None
        current = session.record.rel_path if session.record is not None else None
        session.flush()
        self.window.tools.set_document(None)
        session.close_image()
        return current

    def reopen(
        self, current: str | None, paths: list[str], order: list[int] | None, hidden: set[int]
    ) -> None:
        """After a rewrite: forget cached labels and undo steps (old class numbers), show the new scheme."""
        window = self.window
        project, session = window.project, window.session
        assert project is not None and session is not None
        session.cache.forget(paths)
        for path in paths:
            session.histories.discard(path)
        window.palette.order = list(order or [])
        window.palette.hidden = set(hidden)
        window._project_setting("gui.palette_order", order)
        window._project_setting("gui.hidden_classes", sorted(hidden))
        window._apply_scheme(order, hidden)
        if current is not None:
            window.open_image(current)
        for rec in project.images():
            window.browser.update_record(rec)

    def _run(self, index: int, target: int | None) -> None:
        window = self.window
        project, session = window.project, window.session
        assert project is not None and session is not None
        try:
            plan = plan_merge(project, index, target)
        except SegStudioError as exc:
            window.show_error("Class palette", str(exc))
            return
        paths = [r.rel_path for r in project.images()]
        current = self.close_current()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            remove_class(project, plan)
        except SegStudioError as exc:
            window.show_error("Class palette", str(exc))
        finally:
            QApplication.restoreOverrideCursor()
        active = window.tool_state.active_class
        window.tool_state.active_class = max(0, active - (active > index)) if active != index else 0
        self.reopen(
            current, paths, shifted(window.palette.order, index), set(shifted(window.palette.hidden, index))
        )
        remaining = sum(1 for r in project.images() if r.status == Status.DONE)
        self.refresh_undo()
        window.statusBar().showMessage(
            f"Class removed; {project.scheme.num_classes} classes left ({remaining} images done). "
            "Edit → Undo class removal takes it back.",
            10000,
        )

    def refresh_undo(self) -> None:
        """The Edit menu names the class an undo would bring back, or is greyed out."""
        project = self.window.project
        name = undo_available(project) if project is not None else None
        self.undo_action.setEnabled(name is not None)
        self.undo_action.setText(f"Undo removing class '{name}'" if name else "Undo class removal")

    def undo(self) -> None:
        """Bring back the class removed last, with the masks it had (see core.scheme_undo)."""
        window = self.window
        project, session = window.project, window.session
        if project is None or session is None:
            return
        window.flush_current()
        name = undo_available(project)
        if name is None:
            self.refresh_undo()
            return
        paths = [r.rel_path for r in project.images()]
        current = self.close_current()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            summary = undo_remove_class(project)
        except SegStudioError as exc:
            window.show_error("Undo class removal", str(exc))
            summary = None
        finally:
            QApplication.restoreOverrideCursor()
        if summary is None:
            self.reopen(current, paths, window.palette.order, window.palette.hidden)
            self.refresh_undo()
            return
        index = summary.scheme.names.index(name)
        active = window.tool_state.active_class
        window.tool_state.active_class = active + (active >= index)
        hidden = {i + (i >= index) for i in window.palette.hidden}
        self.reopen(current, paths, unshifted(window.palette.order, index), hidden)
        self.refresh_undo()
        kept = (
            f"; {summary.renumbered} file(s) changed since keep their content ('{name}' pixels merged "
            "then stay merged there)"
            if summary.renumbered
            else ""
        )
        window.statusBar().showMessage(f"Class '{name}' is back in {summary.restored} file(s){kept}", 10000)
