"""The main window: wiring only.

Each part lives in its own module (browser, canvas + overlay presenter, palette, tools, session,
model link); this file creates them, connects their signals, builds menus from the shortcut
table, and persists layout and per-project state. No torch import here (see model_link.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QCursor, QScreen
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from segstudio.core.document import MaskDocument
from segstudio.core.errors import SegStudioError
from segstudio.core.project import ImageRecord, Project, Status
from segstudio.core.schemes import get_scheme
from segstudio.gui import panels, team_view
from segstudio.gui.browser import BrowserWidget
from segstudio.gui.canvas import CanvasView
from segstudio.gui.cursors import fill_cursor, polygon_cursor
from segstudio.gui.editing_session import EditorSession
from segstudio.gui.effort_view import EffortTracker
from segstudio.gui.focus_keys import ShortcutKeysFirst
from segstudio.gui.folder_watch import FolderWatcher
from segstudio.gui.gui_thread_gc import install_gui_thread_gc
from segstudio.gui.inference_client import Severity
from segstudio.gui.legend import ConfidenceLegend
from segstudio.gui.log_folder import open_log_folder, use_project_logs
from segstudio.gui.menus import build_menus, build_toolbars
from segstudio.gui.model_link import ModelLink, ModelStatus
from segstudio.gui.opener import EarlyOpen, ProjectOpener
from segstudio.gui.overlay import OverlayPresenter
from segstudio.gui.palette import PaletteWidget
from segstudio.gui.problems import ProblemsButton, ProblemsPanel, is_follow_up, one_paragraph
from segstudio.gui.prompt_marks import PromptMarks
from segstudio.gui.quick_pick import QuickClassPicker
from segstudio.gui.scheme_actions import SchemeActions
from segstudio.gui.settings import AppSettings
from segstudio.gui.shortcuts import SHORTCUTS, ShortcutsDialog, make_action
from segstudio.gui.smart_tools import SMART_READY, stored_probabilities
from segstudio.gui.tools import SESSION, SMART, Tool, ToolController, ToolState
from segstudio.gui.welcome import build_central, has_model, planned_model

if TYPE_CHECKING:  # the windows themselves are imported when first opened (panels.py)
    from segstudio.gui.crf_panel import CRFPanel
    from segstudio.gui.finetune_panel import FinetunePanel
    from segstudio.gui.versions_dialog import VersionsDialog

__all__ = ["MainWindow"]


def _crf_project():
    """`ml.crf_project`, imported when a project opens: the window itself starts without ml."""
    from segstudio.ml import crf_project

    return crf_project


DISPLAY_ONLY = {"polygon_finish", "polygon_cancel", "prompt_undo", "pan_hint"}
CHECKABLE = {
    "toggle_overlay",
    "outline_mode",
    "confidence_layer",
    "diff_layer",
    "show_prediction",
    "crf_toggle",
    "tool_brush",
    "tool_eraser",
    "tool_fill",
    "tool_polygon",
    *(f"tool_{t.value}" for t in SMART),
}


#: the window's size on first start (no saved geometry) where the screen has room for it
PREFERRED_SIZE = QSize(1400, 900)


def first_window_size(screen: QScreen | None) -> QSize:
    """1400x900, or 95 % of a smaller screen's free area: a 1366x768 laptop gets a window that fits
    (with no window manager, or before one steps in, nothing else shrinks it)."""
    if screen is None:
        return PREFERRED_SIZE
    area = screen.availableGeometry()
    return PREFERRED_SIZE.boundedTo(QSize(int(area.width() * 0.95), int(area.height() * 0.95)))


class MainWindow(QMainWindow):
    project_opened = Signal()

    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        install_gui_thread_gc()  # workers never free Qt objects (whoever made the QApplication)
        self.settings = settings
        self._view_settings: dict[str, object] = {}  # see _view_setting_later
        self._view_settings_timer = QTimer(self, singleShot=True, interval=1500)
        self._view_settings_timer.timeout.connect(self._write_view_settings)
        self.setWindowTitle("SegStudio")
        self.resize(first_window_size(QApplication.primaryScreen()))
        self.project: Project | None = None
        self.session: EditorSession | None = None
        self.model: ModelLink | None = None
        self.folder_watch: FolderWatcher | None = None
        self._view_to_restore: Any = None  # the saved view of an image still being fetched
        self._panels: dict[str, QWidget] = {}  # factory name (panels.*) -> open project-bound window

        self.canvas = CanvasView(self)
        self.central, self.welcome, self.model_hint = build_central(self, self.canvas)
        self.setCentralWidget(self.central)
        self.welcome.set_recent(settings.recent_folders())
        self.overlay = OverlayPresenter(self.canvas, self)
        self.confidence_legend = ConfidenceLegend(self.canvas)
        self._cursors = {Tool.FILL: fill_cursor(), Tool.POLYGON: polygon_cursor()}
        self.browser = BrowserWidget(self)
        self.palette = PaletteWidget(self)
        self.tool_state = ToolState(self)
        self.tools = ToolController(self.tool_state, self)
        self.effort = EffortTracker(self)
        self._dock(self.browser, "Images", Qt.DockWidgetArea.LeftDockWidgetArea, "browser_dock")
        self._dock(self.palette, "Classes", Qt.DockWidgetArea.RightDockWidgetArea, "palette_dock")
        self.problems = ProblemsPanel(self)
        self.problems_dock = self._dock(
            self.problems, "Problems", Qt.DockWidgetArea.BottomDockWidgetArea, "problems_dock"
        )
        self.problems_dock.hide()  # opened from the status-bar notice, never by a problem itself
        self.actions_by_id: dict[str, QAction] = {
            s.id: make_action(self, s.id, checkable=s.id in CHECKABLE, bind_keys=s.id not in DISPLAY_ONLY)
            for s in SHORTCUTS
        }
        for action in self.actions_by_id.values():
            self.addAction(action)  # shortcuts work whatever has focus
        self._keys_first = ShortcutKeysFirst(self)  # ...even a spin box (text fields keep their keys)
        QApplication.instance().installEventFilter(self._keys_first)  # also sees resizes before the layout
        self._build_status_bar()
        self._build_menus_and_toolbars()
        self._connect()
        self._opener = ProjectOpener(self)
        self._opener.opened.connect(self._project_ready)
        self._opener.failed.connect(self._open_failed)
        if (geometry := settings.window_geometry()) is not None:
            self.restoreGeometry(geometry)
        if (state := settings.window_state()) is not None:
            self.restoreState(state)
            QTimer.singleShot(0, self._clamp_side_panels)  # once the restored layout has its real size
        self.overlay.set_opacity(settings.overlay_opacity)
        self.opacity_slider.setValue(int(round(settings.overlay_opacity * 100)))
        self._set_enabled(False)
        self._tool_changed()

    # -- construction ------------------------------------------------------------------------------------
    def _dock(self, widget, title: str, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.pos_label = QLabel("", self)
        self.class_label = QLabel("", self)
        self.effort_label = QLabel("", self)
        # Permanent (right-hand) widgets: a transient message is drawn over ordinary ones, hiding x/y.
        for widget in (self.pos_label, self.class_label):
            bar.addPermanentWidget(widget)
        self.model_status = ModelStatus(self)
        bar.addPermanentWidget(self.effort_label)  # permanent: transient messages must not hide it
        self.problems_button = ProblemsButton(self)
        bar.addPermanentWidget(self.problems_button)
        bar.addPermanentWidget(self.model_status)

    def _build_menus_and_toolbars(self) -> None:
        extra, self.recent_menu = build_menus(self, self.actions_by_id)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.export_action, self.import_action = extra["export"], extra["import"]
        self.cancel_batch_action, self.auto_predict_action = extra["cancel_batch"], extra["auto_predict"]
        self.versions_action, self.finetune_action = extra["versions"], extra["finetune"]
        self.weights_file_action, self.untrained_action = extra["weights_file"], extra["untrained"]
        self.open_logs_action = extra["open_logs"]
        self.undo_class_removal_action = extra["undo_class_removal"]
        self.crf_actions = {k: extra[k] for k in ("crf_on", "crf_panel", "crf_tune")}
        extra["effort"].triggered.connect(lambda: self._panel(panels.effort_view))
        extra["sam_checkpoint"].triggered.connect(self._choose_sam_checkpoint)
        extra["get_sam"].triggered.connect(self._get_sam_model)
        self.auto_predict_action.setChecked(self.settings.auto_predict)
        self.options_bar, self.opacity_slider = build_toolbars(self, self.actions_by_id, self.tool_state)
        self.team_presence: team_view.TeamPresence | None = None
        self.open_team_action = team_view.install_menu_action(self)

    def _connect(self) -> None:
        a = self.actions_by_id
        c = self.canvas
        c.pressed.connect(self._canvas_pressed)
        c.dragged.connect(self.tools.drag)
        c.released.connect(self.tools.release)
        c.hovered.connect(self._hovered)
        c.left.connect(self._clear_readout)  # no stale coordinates once the mouse leaves the canvas
        c.brush_wheel.connect(self.tool_state.grow)
        c.polygon_finish.connect(self.tools.accept)
        c.polygon_cancel.connect(self.tools.cancel)
        c.prompt_undo.connect(self.tools.undo_prompt)
        self.tools.smart.busy_changed.connect(c.set_busy)
        c.secondary_pressed.connect(self.tools.secondary_press)
        self.prompt_marks = PromptMarks(c.vb)
        self.tools.smart.prompts.connect(self.prompt_marks.show)
        self.tools.smart.error.connect(lambda msg: self.show_error("SAM checkpoint", msg))
        self.tools.smart.engines_changed.connect(self.smart_options.refresh)
        self.tools.smart.sam_loaded.connect(
            lambda runtime: self.model is not None and self.model.use_sam(runtime)
        )
        self.tools.smart.embedding_wanted.connect(self._request_embeddings)
        self.tools.smart.paint_gate = self.canvas.viewport()  # first image: painted before the engines load
        c.dragged.connect(self.effort.touch)
        self.tools.action.connect(self.effort.action)
        self.tools.smart.status.connect(self._smart_status)
        self.tools.polygon_changed.connect(
            lambda pts: c.set_polygon(pts, closed=self.tool_state.tool != Tool.SCRIBBLE)
        )
        self.tools.edited.connect(self._edited)
        self.tool_state.changed.connect(self._tool_changed)
        self.browser.image_activated.connect(self.open_image)
        self.palette.class_selected.connect(lambda i: setattr(self.tool_state, "active_class", i))
        self.palette.hidden_changed.connect(self._hidden_changed)
        self.palette.order_changed.connect(lambda order: self._project_setting("gui.palette_order", order))
        self.palette.scheme_edited.connect(self._scheme_edited)
        self.palette.preset_requested.connect(self._preset_requested)
        self.scheme_actions = SchemeActions(self, self.undo_class_removal_action)
        self.palette.load_requested.connect(self.scheme_actions.load_from_file)
        self.palette.delete_requested.connect(self.scheme_actions.delete)
        self.palette.merge_requested.connect(self.scheme_actions.merge)
        self.overlay.counts_changed.connect(self.palette.set_counts)
        self.overlay.diff_fraction_changed.connect(self._effort)
        self.opacity_slider.valueChanged.connect(self._opacity)
        self.problems.image_requested.connect(self.open_image)
        self.welcome.open_requested.connect(self._choose_folder)
        self.welcome.recent_requested.connect(self.open_folder)
        self.model_hint.weights_file.connect(self._choose_weights_file)
        self.model_hint.untrained.connect(self.untrained_action.trigger)
        self.model_hint.finetune.connect(self.finetune_action.trigger)
        self.problems.count_changed.connect(self.problems_button.set_count)
        self.problems_button.clicked.connect(
            lambda: self.problems_dock.setVisible(not self.problems_dock.isVisible())
        )

        a["open_folder"].triggered.connect(self._choose_folder)
        a["save"].triggered.connect(self.flush_current)
        a["rescan"].triggered.connect(
            lambda: self.folder_watch.rescan() if self.folder_watch is not None else None
        )
        a["quit"].triggered.connect(self.close)
        a["undo"].triggered.connect(lambda: self._edit_document(MaskDocument.undo))
        a["redo"].triggered.connect(lambda: self._edit_document(MaskDocument.redo))
        a["accept_prediction"].triggered.connect(lambda: self._edit_document(MaskDocument.accept_prediction))
        a["replace_class"].triggered.connect(self._replace_class_dialog)
        a["mark_done"].triggered.connect(lambda: self.mark(Status.DONE))
        a["mark_skipped"].triggered.connect(lambda: self.mark(Status.SKIPPED))
        a["next_image"].triggered.connect(lambda: self.open_image(self.browser.neighbour(1)))
        a["prev_image"].triggered.connect(lambda: self.open_image(self.browser.neighbour(-1)))
        a["next_unfinished"].triggered.connect(lambda: self.open_image(self.browser.next_unfinished()))
        for key in ("brush", "eraser", "fill", "polygon", *(t.value for t in SMART)):
            a[f"tool_{key}"].triggered.connect(
                lambda _=False, k=key: setattr(self.tool_state, "tool", Tool(k))
            )
        a["protect_cycle"].triggered.connect(self.tool_state.cycle_protect)
        a["brush_smaller"].triggered.connect(lambda: self.tool_state.grow(-1))
        a["brush_larger"].triggered.connect(lambda: self.tool_state.grow(1))
        for n in range(1, 11):
            a[f"class_{n}"].triggered.connect(lambda _=False, n=n: self.palette.select_position(n))
        a["quick_class"].triggered.connect(self._quick_class)
        a["toggle_overlay"].toggled.connect(self.overlay.set_overlay_visible)
        a["outline_mode"].toggled.connect(self.overlay.set_outline)
        a["confidence_layer"].toggled.connect(self.overlay.set_confidence_visible)
        a["confidence_layer"].toggled.connect(self.confidence_legend.setVisible)
        a["diff_layer"].toggled.connect(self.overlay.set_diff_visible)
        a["show_prediction"].toggled.connect(self.overlay.set_show_prediction)
        a["crf_toggle"].toggled.connect(self._crf_toggled)
        a["zoom_fit"].triggered.connect(c.fit)
        a["zoom_1to1"].triggered.connect(c.zoom_1to1)
        a["predict_current"].triggered.connect(self.predict_current)
        a["predict_all_new"].triggered.connect(self.predict_all_new)
        a["shortcuts"].triggered.connect(self._show_shortcuts)
        self.open_logs_action.triggered.connect(self.open_log_folder)
        self.cancel_batch_action.triggered.connect(self.model_status.cancel)
        self.auto_predict_action.toggled.connect(lambda on: setattr(self.settings, "auto_predict", on))
        self.export_action.triggered.connect(lambda: self._panel(panels.export_dialog, modal=True))
        self.import_action.triggered.connect(self._import)
        self.weights_file_action.triggered.connect(self._choose_weights_file)
        self.untrained_action.triggered.connect(
            lambda: self.use_weights(weights="none", path=None, version=None)
        )
        self.finetune_action.triggered.connect(
            lambda: self._panel(panels.finetune_panel, connect=self._connect_finetune)
        )
        self.versions_action.triggered.connect(
            lambda: self._panel(panels.versions_dialog, connect=self._connect_versions)
        )
        self.crf_actions["crf_on"].triggered.connect(self._crf_switched)
        self.crf_actions["crf_panel"].triggered.connect(self._open_crf_panel)
        self.crf_actions["crf_tune"].triggered.connect(self._tune_crf)

    # -- layout at any window size ------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._wrap_toolbars()
        self._restore_side_panels(event.oldSize().width(), event.size().width())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._wrap_toolbars()

    def _wrap_toolbars(self) -> None:
        """Toolbars that do not fit one row go to a second row instead of hiding behind a » button."""
        bars = [
            b for b in (self.tools_bar, self.options_bar, self.smart_options, self.view_bar) if b.isVisible()
        ]
        room = self.width() - 8
        used, wrap_at = 0, None
        for bar in bars:
            used += bar.sizeHint().width()
            if used > room and bar is not bars[0]:
                wrap_at = bar
                break
        if wrap_at is getattr(self, "_toolbar_break", None):
            return
        for bar in bars:
            if self.toolBarBreak(bar):
                self.removeToolBarBreak(bar)
        if wrap_at is not None:
            self.insertToolBarBreak(wrap_at)
        self._toolbar_break = wrap_at

    def _side_docks(self) -> list[QDockWidget]:
        docks = [self.findChild(QDockWidget, n) for n in ("browser_dock", "palette_dock")]
        return [d for d in docks if d is not None and d.isVisible() and not d.isFloating()]

    def before_resize(self, old: int, new: int) -> None:
        """Called before the layout squeezes the panels (the focus_keys filter calls it): their widths now
        are the user's; a smaller window takes room from them that `_restore_side_panels` gives back.

        Why: Qt never gives the room back, so after shrinking and re-growing the window the Images
        panel stayed narrower, and that width was saved."""
        if old > 0 and new < old and getattr(self, "_before_squeeze", None) is None:
            self._before_squeeze = (old, [(d, d.width()) for d in self._side_docks()])

    def _restore_side_panels(self, old: int, new: int) -> None:
        squeezed = getattr(self, "_before_squeeze", None)
        if squeezed is None or new <= old or new < squeezed[0]:
            return
        self._before_squeeze = None
        docks = [(d, w) for d, w in squeezed[1] if shiboken6.isValid(d) and d in self._side_docks()]
        if docks:
            self.resizeDocks([d for d, _ in docks], [w for _, w in docks], Qt.Orientation.Horizontal)

    def _choose_sam_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "SAM checkpoint (ViT-B/L/H .pth)", "", "Checkpoints (*.pth *.pt)"
        )
        if path:
            self.tools.smart.load_sam(path)

    def _get_sam_model(self) -> None:
        """Model → Get a SAM model…: download (or pick) a checkpoint, then load it as the sam engine."""
        from segstudio.gui.sam_download_dialog import SamDownloadDialog

        dialog = SamDownloadDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.chosen.connect(self.tools.smart.load_sam)
        dialog.open()

    def _clamp_side_panels(self) -> None:
        """A side panel saved wider than 40 % of the window (older versions grew them) is narrowed."""
        for dock in self.findChildren(QDockWidget):
            area = self.dockWidgetArea(dock)
            sides = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea)
            if area in sides and not dock.isFloating() and dock.width() > 0.4 * self.width():
                self.resizeDocks(
                    [dock],
                    [max(dock.minimumSizeHint().width(), int(0.22 * self.width()))],
                    Qt.Orientation.Horizontal,
                )

    def _crf_toggled(self, raw: bool) -> None:
        if self.session is not None:
            self.session.set_use_raw_prediction(raw)
            doc = self.session.document
            if doc is not None and doc.prediction is not None:
                self.statusBar().showMessage(
                    _crf_project().crf_change_message(doc.prediction, doc.raw_prediction), 8000
                )

    def _show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def open_log_folder(self) -> Path | None:
        """Help > Open log folder: the project's logs (or the user's) in the file manager."""
        return open_log_folder(self.project)

    def _set_enabled(self, enabled: bool) -> None:
        self.central.setCurrentIndex(1 if enabled else 0)  # no folder open: the welcome page says what to do
        for key, action in self.actions_by_id.items():
            if key not in ("open_folder", "quit", "shortcuts"):
                action.setEnabled(enabled)
        for action in (
            self.export_action,
            self.finetune_action,
            self.versions_action,
            self.cancel_batch_action,
            self.weights_file_action,
            self.untrained_action,
            *self.crf_actions.values(),
        ):
            action.setEnabled(enabled)

    # -- project -------------------------------------------------------------------------------------------
    def open_folder(
        self,
        folder: str | Path,
        project_dir: str | Path | None = None,
        early: EarlyOpen | None = None,
        db: str | None = None,
    ) -> None:
        """Open an image folder in the background; the window stays responsive meanwhile.

        `early`: the same folder already being opened since start-up (run_app), adopted.
        `db`: the team server URL of a team project on this folder (gui/team_view.py)."""
        self.close_project()
        self.statusBar().showMessage(f"Opening {folder}…")
        self.central.setCurrentIndex(1)  # the editor, saying what is happening, not the welcome page
        self.overlay.set_document(None, None, f"Opening {Path(folder).name}…")
        self._opener.start(str(folder), None if project_dir is None else str(project_dir), early, db)

    def _open_failed(self, message: str) -> None:
        self.central.setCurrentIndex(0)
        self.overlay.set_document(None, None)
        self.show_error("Open folder", message)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open image folder")
        if folder:
            self.open_folder(folder)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent_folders():
            self.recent_menu.addAction(folder).triggered.connect(
                lambda _=False, f=folder: self.open_folder(f)
            )
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _project_ready(self, project: Project) -> None:
        self.project = project
        use_project_logs(project)  # this project's problems are logged in its state folder
        self.settings.add_recent_folder(project.image_dir)
        self.session = EditorSession(project, self.settings.autosave_ms, self)
        self.session.image_opened.connect(self._image_opened)
        self.session.fetching.connect(self._image_fetching)
        self.session.fetch_failed.connect(self._image_fetch_failed)
        self.session.record_changed.connect(self.browser.update_record)
        self.session.prediction_changed.connect(self.overlay.rebuild)
        self.session.error.connect(lambda msg: self.show_error("SegStudio", msg))
        self.session.image_problem.connect(self.report_problem)
        self.session.neighbours = lambda p: [
            x for x in (self.browser.neighbour(1), self.browser.neighbour(-1)) if x
        ]
        self.model = ModelLink(project, self)
        self.scheme_actions.refresh_undo()
        self.crf_actions["crf_on"].setChecked(_crf_project().project_crf(project) is not None)
        weights = project.get_setting("gui.weights")
        if isinstance(weights, dict) and weights.get("weights") in ("none", "file"):
            self.model.spec_changes = {k: weights.get(k) for k in ("weights", "path", "version")}
            for flag in ("remap_classes", "classes_by_index"):
                self.model.spec_changes[flag] = bool(weights.get(flag))
        self.model.prediction_ready.connect(self.session.apply_prediction)
        self.model.prediction_ready.connect(lambda rel_path, _result: self.resolve_problem(rel_path))
        self.model.error.connect(self._model_error)
        self.model.status_message.connect(self._model_note)
        self.model.model_loaded.connect(self._model_loaded)
        self.model_status.attach(self.model)
        self._show_planned_model()
        self.model.model_loaded.connect(lambda *_: self.model_hint.hide())
        self.model.embedding_ready.connect(self.tools.smart.embedding_arrived)
        self._offer_click_model()
        if self.tools.smart.sam is not None:  # a SAM checkpoint loaded before this project opened
            self.model.use_sam(self.tools.smart.sam)
        order = project.get_setting("gui.palette_order")
        hidden = set(project.get_setting("gui.hidden_classes", []) or [])
        self._apply_scheme(order if isinstance(order, list) else None, hidden)
        self.browser.set_project(project)
        self.team_presence = team_view.attach(self, project)  # None for a local project
        self._list_unreadable(project.images())
        self.folder_watch = FolderWatcher(project, self)
        self.folder_watch.changed.connect(self._folder_changed)
        self.folder_watch.failed.connect(lambda msg: self.statusBar().showMessage(msg, 10000))
        self.tool_state.restore(project.get_setting("gui.tool"))
        self.palette.select_class(self.tool_state.active_class, emit=False)
        self.setWindowTitle(f"SegStudio — {project.image_dir}")
        self._set_enabled(True)
        self.statusBar().showMessage(f"{len(self.browser.model.records()):,} images", 3000)
        last = project.get_setting("gui.last_image")
        target = last if isinstance(last, str) and project.get(last) else self.browser.neighbour(1)
        if target:
            self.open_image(target, restore_view=True)
        else:
            self.overlay.set_document(
                None,
                None,
                "This folder has no images yet. Copy images into it (they appear "
                "by themselves) or open another folder.",
            )
        self.project_opened.emit()

    def _model_loaded(self, version: str, _device: str) -> None:
        """A model finished loading; it may arrive after the project closed (no session left)."""
        if self.session is not None:
            self.session.model_version = version

    def _apply_scheme(self, order: list[int] | None = None, hidden: set[int] | None = None) -> None:
        assert self.project is not None
        scheme = self.project.scheme
        self.palette.set_scheme(scheme, order, hidden)
        self.overlay.set_colors(scheme.colors, self.palette.hidden)
        self.options_bar.set_class_names(scheme.names)

    def close_project(self) -> None:
        if self.project is None:
            return
        self._save_project_state()
        self._close_panels()
        if self.team_presence is not None:
            self.team_presence.stop()
            self.team_presence = None
        if self.folder_watch is not None:
            self.folder_watch.close()
            self.folder_watch = None
        self.tools.set_document(None)
        self.effort.attach(None, None, None)
        if self.model is not None:
            self.model.shutdown()
        if self.session is not None:
            self.session.close()
        self.browser.set_project(None)
        self.problems.clear()
        self.overlay.set_document(None, None)
        self.project.close()
        self.project = self.session = self.model = None
        self.model_status.attach(None)
        self.model_hint.hide()
        self.welcome.set_recent(self.settings.recent_folders())
        self._set_enabled(False)

    def _save_project_state(self) -> None:
        self._view_settings.clear()  # written below, current
        if self.project is None or self.session is None:
            return
        if self.session.record is not None:
            self._project_setting("gui.last_image", self.session.record.rel_path)
            self._project_setting("gui.view", self.canvas.view_state())
        self._project_setting("gui.tool", self.tool_state.to_dict())

    def _view_setting_later(self, key: str, value: object) -> None:
        """Where the user is (image, zoom) is written once they pause, not on every image switch: each
        write is a synced file or database commit on the GUI thread (most of an image switch's time on
        a team project). Closing the project writes the latest at once."""
        self._view_settings[key] = value
        self._view_settings_timer.start()

    def _write_view_settings(self) -> None:
        pending, self._view_settings = self._view_settings, {}
        for key, value in pending.items():
            self._project_setting(key, value)

    def _project_setting(self, key: str, value: object) -> None:
        if self.project is not None:
            try:
                self.project.set_setting(key, value)
            except SegStudioError as exc:
                self.show_error("SegStudio", str(exc))

    # -- images -------------------------------------------------------------------------------------------
    def open_image(self, rel_path: str | None, restore_view: bool = False) -> None:
        if not rel_path or self.session is None:
            return
        if self.session.record is not None and self.session.record.rel_path != rel_path:
            self._view_setting_later("gui.view", self.canvas.view_state())
        self.tools.set_document(None)
        self._view_to_restore = None
        if self.session.open_image(rel_path):
            self._view_setting_later("gui.last_image", rel_path)
            if restore_view:
                self._write_view_settings()
                view = self.project.get_setting("gui.view") if self.project else None
                if self.session.fetching_image:
                    self._view_to_restore = view  # applied when the image arrives
                else:
                    self.canvas.restore_view_state(view)

    def _image_fetching(self, rec: ImageRecord) -> None:
        """The image is on its way from the team server: say so; the window stays usable meanwhile (open
        another image and this one is dropped when it arrives)."""
        self.overlay.set_document(None, None, f"{rec.rel_path}\n\nfetching from the server…")
        self._clear_readout()
        self.effort.attach(self.project, None, None)
        self.tools.smart.record = None
        self.tools.set_document(None, None)
        self.canvas.paint_enabled = False
        self.browser.set_current(rec.rel_path)
        self.setWindowTitle(f"SegStudio — {rec.rel_path} (fetching from the server…)")
        self.statusBar().showMessage(f"{rec.rel_path}: fetching from the server…", 10000)

    def _image_fetch_failed(self, rec: ImageRecord, message: str) -> None:
        """The fetch of the open image failed (server away, image missing there): say why and how to retry;
        the window keeps running and any other image can be opened."""
        self._view_to_restore = None
        self.overlay.set_document(
            None,
            None,
            f"{rec.rel_path} could not be fetched from the server:\n{message}\n\n"
            "Open it again to retry, or pick another image.",
        )
        self.setWindowTitle(f"SegStudio — {rec.rel_path} (not fetched)")
        self.statusBar().showMessage(f"{rec.rel_path} could not be fetched: {one_paragraph(message)}", 15000)

    def _image_opened(self, rec: ImageRecord, image, document) -> None:
        reason = rec.error or (self.browser.model.problems.get(rec.rel_path) if document is None else None)
        message = f"{rec.rel_path} cannot be opened:\n{reason}" if reason else ""
        self.overlay.set_document(document, image, message)
        self._clear_readout()  # the read-out described the previous image
        self.effort.attach(self.project, rec if document is not None else None, document)
        self.tools.smart.probabilities_source = lambda p=self.project, r=rec: stored_probabilities(p, r)
        self.tools.smart.record = rec if document is not None else None
        self.tools.set_document(document, image)
        self.canvas.paint_enabled = document is not None
        self.browser.set_current(rec.rel_path)
        self.browser.update_record(rec)
        if self.team_presence is not None:
            self.team_presence.image_opened(rec)
        self.setWindowTitle(f"SegStudio — {rec.rel_path}")
        if self._view_to_restore is not None and document is not None:
            self.canvas.restore_view_state(self._view_to_restore)
        self._view_to_restore = None
        if document is not None and self.settings.auto_predict and self.model is not None:
            # After this event: the image is painted first, the model request follows.
            QTimer.singleShot(
                0,
                lambda p=rec.rel_path, predicted=document.prediction is not None: self._auto_predict(
                    p, predicted
                ),
            )

    def _auto_predict(self, rel_path: str, predicted: bool) -> None:
        if self.model is None:
            return
        if not predicted:
            self.model.predict(rel_path)
        upcoming = [p for p in (self.browser.neighbour(1), self.browser.neighbour(2)) if p]
        records = [self.browser.model.record(p) for p in upcoming]
        self.model.prefetch(
            [r.rel_path for r in records if r is not None and r.status == Status.NEW and not r.error]
        )

    def _request_embeddings(self, rel_path: str) -> None:
        """SAM: the inference worker embeds this image, then the next ones in browser order."""
        if self.model is None:
            return
        from segstudio.ml.sam_cache import PREFETCH_COUNT  # SAM is loaded, so ml is already imported

        upcoming = [p for p in (self.browser.neighbour(k) for k in range(1, PREFETCH_COUNT + 1)) if p]
        self.model.embed(rel_path, upcoming, active=self.tool_state.engine == "sam")

    def _folder_changed(self, report) -> None:
        """Files were added, removed or renamed on disk: the list, the open image and the problems follow."""
        if self.project is None or self.session is None:
            return
        renamed = dict(report.renamed)
        for old, new in renamed.items():
            self.problems.rename(old, new)
        for path in report.removed:
            self.problems.resolve(path)
        current = self.session.record.rel_path if self.session.record is not None else None
        records = self.project.images()
        self.browser.refresh(records, renamed, report.changed)
        # Cached pixels and labels are keyed by path: every path that now holds something else forgets them.
        self.session.cache.forget(
            {*report.changed, *report.removed, *report.added, *report.restored, *renamed, *renamed.values()}
        )
        fresh = set(report.added) | set(report.changed) | set(report.restored) | set(renamed.values())
        self._list_unreadable([r for r in records if r.rel_path in fresh])
        if current in renamed and (rec := self.project.get(renamed[current])) is not None:
            self.session.record = rec  # same content, same document: keep editing
            self.setWindowTitle(f"SegStudio — {rec.rel_path}")
        elif current is not None and (current in report.removed or current in report.invalidated):
            self.tools.set_document(None)
            self.session.close_image()  # its file is gone (or no longer fits its mask): nothing to save to
            kept = self.project.get(current) is not None  # invalidated: same path, new pixels
            target = current if kept else (self.browser.next_unfinished() or self.browser.neighbour(1))
            if target:
                self.open_image(target)
            else:
                self.overlay.set_document(None, None, "The folder has no images left.")
        elif current is not None and current in report.changed:
            self.open_image(current)  # new pixels, same size: the mask still fits (saved first, then reread)
        parts = [
            f"{len(v)} {k}"
            for k, v in (
                ("added", report.added),
                ("removed", report.removed),
                ("renamed", report.renamed),
                ("changed", report.changed),
                ("back", report.restored),
            )
            if v
        ]
        self.statusBar().showMessage(f"Folder changed on disk: {', '.join(parts)}", 8000)

    def mark(self, status: Status) -> None:
        if self.session is None or self.session.record is None:
            return
        if self.session.fetching_image:
            self.statusBar().showMessage(
                "the image is still being fetched from the server: mark it once shown", 5000
            )
            return
        if self.session.set_status(status) is not None:
            if status == Status.DONE:
                self._offer_crf_tuning()
            nxt = self.browser.next_unfinished()
            if nxt:
                self.open_image(nxt)

    # -- editing ------------------------------------------------------------------------------------------
    def _canvas_pressed(self, x: float, y: float) -> None:
        shift = bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.tools.press(x, y, positive=not shift)

    def _edited(self) -> None:
        if self.session is not None:
            self.session.stroke_finished()

    def _edit_document(self, edit: Callable[[MaskDocument], object | None]) -> None:
        """Apply `edit` (e.g. `MaskDocument.undo`) to the open mask; a change (not None) is saved like a stroke.
        The object being clicked is settled first: its pending clicks dropped, what is shown one step."""
        self.tools.smart.settle()
        doc = self.session.document if self.session else None
        if doc is not None and edit(doc) is not None and self.session is not None:
            self.session.stroke_finished()

    def _replace_class_dialog(self) -> None:
        doc = self.session.document if self.session else None
        if doc is None or self.project is None:
            return
        names = self.project.scheme.names
        a, ok = QInputDialog.getItem(self, "Replace class", "Replace every pixel of:", names, 0, False)
        if not ok:
            return
        b, ok = QInputDialog.getItem(
            self, "Replace class", f"…{a} by:", names, self.tool_state.active_class, False
        )
        if ok and doc.replace_class(names.index(a), names.index(b)) is not None:
            self.session.stroke_finished()

    def _quick_class(self) -> None:
        """Type-to-search class choice, at the mouse when it is over the canvas."""
        scheme = self.palette.scheme
        if scheme is None:
            return
        if getattr(self, "quick_pick", None) is None:
            self.quick_pick = QuickClassPicker(self)
            self.quick_pick.picked.connect(self.palette.select_class)
        c = self.canvas
        at = QCursor.pos() if c.underMouse() else c.mapToGlobal(c.rect().center()) - QPoint(130, 160)
        self.quick_pick.popup(
            scheme.names, scheme.colors.tolist(), self.palette.order, at, self.palette.active_class
        )

    def _tool_changed(self) -> None:
        state = self.tool_state
        self.actions_by_id[f"tool_{state.tool.value}"].setChecked(True)
        self.canvas.brush_cursor_enabled = state.tool in (Tool.BRUSH, Tool.ERASER, Tool.SUPERPIXEL)
        self.canvas.secondary_enabled = state.tool in (*SESSION, Tool.POLYGON)
        self.canvas.set_tool_cursor(self._cursors.get(state.tool))
        self.canvas.set_brush_radius(state.radius)
        if state.tool != Tool.POLYGON:
            self.tools.cancel_polygon()
        if self.palette.active_class != state.active_class:
            self.palette.select_class(state.active_class, emit=False)

    def _hovered(self, x: float, y: float) -> None:
        doc = self.session.document if self.session else None
        xi, yi = int(round(x)), int(round(y))
        if doc is None or self.project is None or not (0 <= yi < doc.shape[0] and 0 <= xi < doc.shape[1]):
            self._clear_readout()  # off the image: no stale or negative coordinates
            return
        self.pos_label.setText(f"x {xi}, y {yi}")
        value = int(doc.labels[yi, xi])
        names = self.project.scheme.names
        self.class_label.setText(names[value] if value < len(names) else "unlabeled")
        if self.tools.polygon:
            self.canvas.set_polygon(self.tools.polygon, (x, y))

    def _clear_readout(self) -> None:
        self.pos_label.setText("")
        self.class_label.setText("")

    def _effort(self, fraction: float | None) -> None:
        self.effort_label.setText("" if fraction is None else f"changed vs prediction: {fraction:.2%}")

    def _opacity(self, value: int) -> None:
        self.overlay.set_opacity(value / 100)
        self.settings.overlay_opacity = value / 100

    def _hidden_changed(self, hidden: frozenset[int]) -> None:
        self.overlay.set_hidden(hidden)
        self._project_setting("gui.hidden_classes", sorted(hidden))

    def _scheme_edited(self, scheme) -> None:
        if self.project is None:
            return
        try:
            self.project.set_scheme(scheme)
        except SegStudioError as exc:
            self.show_error("Class palette", str(exc))
        self._apply_scheme()

    def _preset_requested(self, name: str) -> None:
        self.switch_scheme(get_scheme(name), f"the '{name}' scheme")

    def switch_scheme(self, scheme, what: str) -> None:
        """A preset or a scheme file replaces the project's scheme (asked first when masks exist)."""
        if self.project is None:
            return
        self.flush_current()
        labelled = any(r.status in (Status.IN_PROGRESS, Status.DONE) for r in self.project.images())
        if labelled:
            answer = QMessageBox.question(
                self,
                "Change label scheme",
                f"Switch this project to {what} ({scheme.num_classes} classes)? Existing masks keep their "
                "class numbers, so they will be read with the new class names.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                self._apply_scheme()
                return
        self._scheme_edited(scheme)
        self.statusBar().showMessage(f"Label scheme: {what}, {scheme.num_classes} classes", 8000)

    def flush_current(self) -> None:
        if self.session is not None:
            self.session.flush()

    # -- model --------------------------------------------------------------------------------------------
    def predict_current(self) -> None:
        if self.model is not None and self.session is not None and self.session.record is not None:
            self.model_status.worker_label.setText("model: starting…")
            self.model.predict(self.session.record.rel_path)

    def predict_all_new(self) -> None:
        if self.model is not None:
            count = self.model.predict_all_new()
            self.model_status.batch_started(count)
            if not count:
                self.statusBar().showMessage("No new images to pre-annotate", 3000)

    def _choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model weights", "", "PyTorch weights (*.pt *.pth);;All files (*)"
        )
        if path:
            self.use_weights_file(path)

    def use_weights_file(self, path: str) -> None:
        """A checkpoint of other classes: adopt its classes or map them by name (asked), then use it."""
        if self.project is None or self.session is None:
            return
        from segstudio.gui.checkpoint_classes import ask_checkpoint_classes

        paths = [r.rel_path for r in self.project.images()]
        self.flush_current()
        choice = ask_checkpoint_classes(self, self.project, path)
        if choice.changes is None:
            return
        if choice.adopted is not None:
            current = self.scheme_actions.close_current()
            self.tool_state.active_class = 0
            self.scheme_actions.reopen(current, paths, None, set())
        self.use_weights(weights="file", path=path, version=None, **choice.changes)

    def use_weights(self, **changes: object) -> None:
        """Model menu: the weights to predict with from now on (the status bar names the model once loaded)."""
        changes.setdefault("remap_classes", False)  # only a checkpoint the user chose to map by name remaps
        changes.setdefault("classes_by_index", False)
        if self.model is not None:
            self.model.use_weights(**changes)
            self._project_setting("gui.weights", changes)  # the project reopens with the same choice
            self._show_planned_model()
            what = (
                "the untrained model (random weights)"
                if changes.get("weights") == "none"
                else f"{changes.get('path')}"
            )
            self.statusBar().showMessage(f"Predictions will use {what}", 10000)

    def _show_planned_model(self) -> None:
        """Status bar and hint bar name the model this project will use (never the previous project's)."""
        if self.project is None or self.model is None:
            return
        choice = self.model.spec_changes
        self.model_status.set_planned(planned_model(self.project, choice))
        self.model_hint.setVisible(not has_model(self.project, choice))

    # -- other engineers' panels -------------------------------------------------------------------------
    def _panel(
        self,
        factory: panels.PanelFactory,
        modal: bool = False,
        connect: Callable[[Any], None] | None = None,
    ) -> None:
        """Open (or bring back) a project-bound window; one of each kind, closed with the project.

        `connect` wires the new window's own signals (each caller knows its window's type, so no probing).
        """
        if self.project is None:
            return
        kind = factory.__name__
        existing = self._panels.get(kind)
        running = (
            existing is not None and shiboken6.isValid(existing) and getattr(existing, "is_running", bool)()
        )
        if existing is not None and shiboken6.isValid(existing) and (existing.isVisible() or running):
            existing.show()  # a fine-tune window closed during its run was only hidden
            existing.raise_()
            existing.activateWindow()
            return
        widget = panels.open_panel(
            self,
            factory,
            (self.project, self),
            lambda m: self.show_error("Not available", m),
            modal=modal,
            connect=connect,
        )
        if widget is not None and not modal:
            self._panels[kind] = widget

    def _close_panels(self) -> None:
        """A training child is stopped (its best checkpoint kept) before its project closes."""
        for widget in self._panels.values():
            if shiboken6.isValid(widget):
                if hasattr(widget, "shutdown"):
                    widget.shutdown()
                widget.close()
        self._panels.clear()

    # -- dense CRF (Model menu; the panel does the work) ----------------------------------------------------
    def _crf_switched(self, on: bool) -> None:
        if self.project is not None:
            params = _crf_project().set_enabled(self.project, on)
            self._crf_changed(params if on else None)

    def _crf_changed(self, params: object) -> None:
        """New predictions use this CRF (None = off): hot-swapped into a running worker."""
        self.crf_actions["crf_on"].setChecked(params is not None)
        if self.model is not None:
            self.model.change_model(crf=params)
        self.statusBar().showMessage(
            f"Dense CRF {'on' if params is not None else 'off'} for new predictions", 8000
        )

    def _open_crf_panel(self) -> None:
        self._panel(panels.crf_panel, connect=self._connect_crf)

    def _tune_crf(self) -> None:
        self._open_crf_panel()
        panel = self._panels.get(panels.crf_panel.__name__)
        if panel is not None:
            panel.start_tuning()

    def _offer_crf_tuning(self) -> None:
        """Once MIN_TUNE_IMAGES corrected images have stored probabilities, tune once in the background.

        Only an offer: when the project cannot be read now (a team server away), the next Mark done asks
        again, and marking the image done goes on as usual."""
        if self.project is None:
            return
        crf_project = _crf_project()
        try:
            if self.project.get_setting("crf_tune_offered"):
                return
            enough = crf_project.tunable_count(self.project) >= crf_project.MIN_TUNE_IMAGES
        except SegStudioError:
            return
        if enough:
            self._project_setting("crf_tune_offered", True)
            self._tune_crf()

    def _connect_crf(self, panel: CRFPanel) -> None:
        panel.crf_changed.connect(self._crf_changed)

    def _connect_finetune(self, panel: FinetunePanel) -> None:
        panel.model_version_ready.connect(self._new_version_ready)

    def _connect_versions(self, dialog: VersionsDialog) -> None:
        dialog.version_activated.connect(self._version_activated)

    def _new_version_ready(self, version: str, path: str) -> None:
        """Fine-tuning finished and the user chose the new version: the worker predicts with it from now on."""
        self._version_activated(version)
        self.statusBar().showMessage(f"Now predicting with model version {version} ({path})", 15000)

    def _version_activated(self, version: str) -> None:
        """Versions dialog picked a model version: hot-swap it into a running worker."""
        if self.model is not None:  # no worker yet: it starts from the project's active version
            self.model.change_model(weights="project", version=version)
        self._offer_click_model()

    def _offer_click_model(self) -> None:
        """The smart tool's ``learned`` engine follows the active version's click model (rollback included)."""
        from segstudio.ml.click_model_files import click_model_path

        active = self.project.active_model_version() if self.project is not None else None
        self.tools.smart.set_click_model(click_model_path(active.checkpoint_path if active else None))

    def _import(self) -> None:
        def connect(dialog: object) -> None:
            dialog.project_imported.connect(lambda folder: self.open_folder(folder))

        panels.open_panel(
            self,
            panels.import_dialog,
            (self,),
            lambda m: self.show_error("Not available", m),
            modal=True,
            connect=connect,
        )

    # -- problems -------------------------------------------------------------------------------------------
    def report_problem(self, rel_path: str, reason: str) -> None:
        """One image cannot be used: listed and marked, never a modal box (nothing to decide)."""
        self.problems.add(rel_path, reason)
        self.browser.model.set_problem(rel_path, reason)
        self._refresh_record(
            rel_path
        )  # an image found unreadable when decoded: its recorded badge and counters
        self.statusBar().showMessage(f"{rel_path}: {one_paragraph(reason)} (see Problems)", 10000)

    def _list_unreadable(self, records: list[ImageRecord]) -> None:
        """Files the scan could not read are problems too (their badge already says "unreadable")."""
        listed = self.problems.problems()
        for rec in records:
            if rec.error:
                self.problems.add(rec.rel_path, f"unreadable: {rec.error}")
            elif f"{rec.rel_path}: unreadable:" in listed.get(rec.rel_path, ""):
                self.resolve_problem(rec.rel_path)  # replaced by a readable file

    def resolve_problem(self, rel_path: str) -> None:
        self.problems.resolve(rel_path)
        self.browser.model.set_problem(rel_path, None)

    def _model_error(self, where: str, message: str) -> None:
        """Model errors: loading (blocks all predictions) gets a box; per-image ones go to the problems list."""
        if not where:
            self.show_error("Model", message)
        elif is_follow_up(message) or self.project is None or self.project.get(where) is None:
            self.statusBar().showMessage(f"{where}: {message}", 10000)  # the box already says why
        else:
            self.report_problem(where, message)

    def _model_note(self, message: str, severity: str) -> None:
        """A note from the predictor: every one in the status bar; fallbacks (out of memory, CPU instead
        of the GPU, float32 instead of half precision) in the problems list too, so they are not missed."""
        self.statusBar().showMessage(f"Model: {message}", 15000)
        if severity == Severity.WARNING:
            self.problems.add_note("Model", message)

    # -- misc ---------------------------------------------------------------------------------------------
    def _refresh_record(self, rel_path: str, _message: str = "") -> None:
        rec = self.project.get(rel_path) if self.project is not None and rel_path else None
        if rec is not None:
            self.browser.update_record(rec)

    def show_error(self, title: str, message: str) -> None:
        """Non-blocking message box (the editor keeps running; tests are never stuck in a dialog).

        The same message twice in a row (e.g. "no model" for every prefetched image) only goes to
        the status bar; further messages while a box is open are added to it, never stacked as
        boxes on top of each other.
        """
        self.statusBar().showMessage(message.split("\n")[0], 10000)
        if self.isVisible() and message != getattr(self, "last_error", None):
            box = getattr(self, "error_box", None)
            if box is not None and shiboken6.isValid(box) and box.isVisible():
                box.setText(f"{box.text()}\n\n{title}: {message}")
            else:
                box = QMessageBox(
                    QMessageBox.Icon.Warning,
                    title,
                    one_paragraph(message),
                    QMessageBox.StandardButton.Ok,
                    self,
                )
                box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
                self.error_box = box
                box.open()
        self.last_error = message

    def _smart_status(self, text: str) -> None:
        """The smart tools' news. "Ready" comes after every image opens: it must not wipe a message the
        user still needs (a consensus resolution's "paint the disputed pixels, then accept", a rejection);
        a problem is always shown."""
        if text.startswith(SMART_READY) and self.statusBar().currentMessage():
            return
        self.statusBar().showMessage(text, 5000)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._opener.cancel()
        self.close_project()
        self.browser.shutdown()
        self.tools.smart.shutdown()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        super().closeEvent(event)
