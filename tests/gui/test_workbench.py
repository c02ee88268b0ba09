"""The annotation window driven through its real widgets (offscreen): keys, mouse strokes, reopen.

Images are a copy of the demo folder (real photos, at most 640 px wide, so the suite stays
fast on a loaded 2-core machine). No timing assertions: every wait is `qtbot.waitUntil` with a generous timeout.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from segstudio.core.document import UNLABELED
from segstudio.core.project import Project, Status
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings
from segstudio.gui.tools import Tool
from tests.fakes import FakeInferenceClient

WAIT = 20_000  # ms; generous for a loaded CI machine


DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"
DEMO_NAMES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A copy of the demo folder (real photos); made from scikit-image's copies if it is absent."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in DEMO_NAMES:
        if (DEMO / name).is_file():
            shutil.copy2(DEMO / name, folder / name)
        else:
            skdata = pytest.importorskip("skimage.data")
            Image.fromarray(getattr(skdata, name.removesuffix(".jpg"))()).save(folder / name, quality=90)
    return folder


@pytest.fixture
def make_window(qtbot):
    windows: list[MainWindow] = []

    def make(folder: Path | None = None) -> MainWindow:
        window = MainWindow(AppSettings())
        qtbot.addWidget(window)
        window.resize(1700, 1000)  # canvas zoom > 1, so every image pixel can be clicked
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        if folder is not None:
            window.open_folder(folder)
            qtbot.waitUntil(
                lambda: window.session is not None and window.session.document is not None, timeout=WAIT
            )
        return window

    yield make
    for window in windows:
        window.close()


def stroke(window: MainWindow, points: list[tuple[int, int]]) -> None:
    """Press at the first image pixel, move through the others, release at the last."""
    canvas = window.canvas
    viewport = canvas.viewport()
    positions = [canvas.to_widget(x, y) for x, y in points]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
    for pos in positions[1:]:
        QTest.mouseMove(viewport, pos)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[-1])


def click(window: MainWindow, x: int, y: int) -> None:
    pos = window.canvas.to_widget(x, y)
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)


def key(
    window: MainWindow, k: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, k, modifier)


def saved_mask(folder: Path, rel_path: str) -> np.ndarray | None:
    with Project.open(folder) as project:
        return project.load_mask(project.get(rel_path))


def test_select_class_by_key_and_paint_a_stroke(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    doc = window.session.document
    assert window.session.record.rel_path == "astronaut.jpg"
    key(window, Qt.Key.Key_3)
    assert window.tool_state.active_class == window.palette.order[2] == 2
    assert "Active: bicycle" in window.palette.active_label.text()
    window.tool_state.size = 5
    stroke(window, [(40, 50), (90, 52), (150, 60)])
    labels = doc.labels
    assert labels[50, 40] == 2 and labels[60, 150] == 2
    # Interpolated between the sparse mouse events: no gaps along the path.
    assert (labels[49:54, 41:90] == 2).any(axis=0).all()
    assert labels[10, 10] == UNLABELED
    assert doc.history.undo_count == 1
    # First edit moves the image to in_progress (shown at once in the browser) and autosaves.
    assert window.session.record.status == Status.IN_PROGRESS
    assert window.browser.model.record("astronaut.jpg").status == Status.IN_PROGRESS
    qtbot.waitUntil(lambda: window.project.get("astronaut.jpg").status == Status.IN_PROGRESS, timeout=WAIT)
    qtbot.waitUntil(lambda: window.project.has_mask(window.project.get("astronaut.jpg")), timeout=WAIT)
    np.testing.assert_array_equal(window.project.load_mask(window.project.get("astronaut.jpg")), labels)


def test_undo_redo_through_shortcuts(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    doc = window.session.document
    key(window, Qt.Key.Key_2)
    stroke(window, [(30, 30), (60, 30)])
    after_first = doc.labels.copy()
    stroke(window, [(30, 80), (60, 80)])
    assert doc.history.undo_count == 2
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.labels, after_first)
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.labels == UNLABELED).all()
    key(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.labels, after_first)


def test_flood_fill_polygon_and_protect_mode(make_window, image_folder):
    window = make_window(image_folder)
    doc = window.session.document
    h, w = doc.shape
    # Polygon: click four vertices, Enter fills.
    key(window, Qt.Key.Key_4)  # class index 3
    key(window, Qt.Key.Key_G)
    assert window.tool_state.tool == Tool.POLYGON
    for x, y in ((20, 20), (120, 20), (120, 100), (20, 100)):
        click(window, x, y)
    assert len(window.tools.polygon) == 4
    key(window, Qt.Key.Key_Return)
    assert doc.labels[60, 70] == 3 and doc.labels[20, 20] == 3
    assert doc.labels[110, 70] == UNLABELED and doc.labels[60, 130] == UNLABELED
    # Esc cancels a polygon in progress.
    click(window, 150, 150)
    key(window, Qt.Key.Key_Escape)
    assert window.tools.polygon == []

    # Flood fill the unlabeled background with class 1: the square stays.
    key(window, Qt.Key.Key_2)
    key(window, Qt.Key.Key_F)
    click(window, w - 5, h - 5)
    assert doc.labels[h - 5, w - 5] == 1 and doc.labels[0, 0] == 1
    assert doc.labels[60, 70] == 3

    # Protect "only class": painting class 5 over class 3 only; the class-1 background survives.
    window.tool_state.protect_class = 3
    key(window, Qt.Key.Key_P)  # none -> unlabeled only
    key(window, Qt.Key.Key_P)  # -> only the chosen class
    assert window.tool_state.protect().target == 3
    key(window, Qt.Key.Key_B)
    key(window, Qt.Key.Key_6)  # class index 5
    window.tool_state.size = 31
    stroke(window, [(110, 60), (140, 60)])
    assert doc.labels[60, 115] == 5  # was class 3
    assert doc.labels[60, 135] == 1  # background protected


def test_mark_done_moves_to_next_unfinished_and_saves(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    key(window, Qt.Key.Key_2)
    stroke(window, [(30, 30), (80, 40)])
    expected = window.session.document.labels.copy()
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.session.record.rel_path == "chelsea.jpg", timeout=WAIT)
    # The mask and status are written by the background writer (the GUI thread never waits for it).
    qtbot.waitUntil(lambda: window.project.get("astronaut.jpg").status == Status.DONE, timeout=WAIT)
    rec = window.project.get("astronaut.jpg")
    np.testing.assert_array_equal(window.project.load_mask(rec), expected)
    # the browser hears of it through a queued signal after the write: wait for it, don't race it
    qtbot.waitUntil(lambda: "1 / 4 done" in window.browser.counter.text(), timeout=WAIT)
    # The browser filter narrows to done images.
    window.browser.set_status_filter("Done")
    assert window.browser.model.visible_paths() == ["astronaut.jpg"]


def test_mark_done_goes_on_when_the_project_cannot_be_read_for_the_crf_offer(
    make_window, image_folder, qtbot, monkeypatch
):
    """Mark done asks whether enough images are ready for CRF tuning, an optional offer. A project that
    cannot be read at that moment (a team server away) must not break Mark done (seen once under load)."""
    from segstudio.core.errors import ProjectError
    from segstudio.ml import crf_project

    def unreadable(project):
        raise ProjectError("lost the connection to the team server while trying to read the project")

    monkeypatch.setattr(crf_project, "tunable_count", unreadable)
    window = make_window(image_folder)
    key(window, Qt.Key.Key_2)
    stroke(window, [(30, 30), (80, 40)])
    key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.session.record.rel_path == "chelsea.jpg", timeout=WAIT)
    qtbot.waitUntil(lambda: window.project.get("astronaut.jpg").status == Status.DONE, timeout=WAIT)


def test_reopen_finds_everything_as_left(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    key(window, Qt.Key.Key_Right)  # next image
    qtbot.waitUntil(lambda: window.session.record.rel_path == "chelsea.jpg", timeout=WAIT)
    key(window, Qt.Key.Key_5)
    key(window, Qt.Key.Key_E)
    key(window, Qt.Key.Key_B)
    window.tool_state.size = 9
    stroke(window, [(50, 50), (100, 70)])
    painted = window.session.document.labels.copy()
    window.canvas.vb.setRange(xRange=(10, 110), yRange=(20, 90), padding=0)
    view = window.canvas.view_state()
    window.close()

    assert window.project is None  # closing saved and released the project
    settings = AppSettings()
    assert settings.recent_folders()[0] == str(image_folder.resolve())
    assert settings.window_geometry() is not None and settings.window_state() is not None
    reopened = make_window(image_folder)
    session = reopened.session
    assert session.record.rel_path == "chelsea.jpg"
    np.testing.assert_array_equal(session.document.labels, painted)
    assert session.record.status == Status.IN_PROGRESS
    assert reopened.tool_state.tool == Tool.BRUSH
    assert reopened.tool_state.size == 9 and reopened.tool_state.active_class == 4
    np.testing.assert_allclose(reopened.canvas.view_state(), view, atol=2.0)
    # The undo history of the session is gone with the session, the mask is not.
    assert session.document.history.undo_count == 0


def test_history_survives_switching_images(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    key(window, Qt.Key.Key_2)
    stroke(window, [(30, 30), (60, 30)])
    key(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.session.record.rel_path == "chelsea.jpg", timeout=WAIT)
    key(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.session.record.rel_path == "astronaut.jpg", timeout=WAIT)
    doc = window.session.document
    assert doc.labels[30, 45] == 1
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.labels == UNLABELED).all()


class FakeController(FakeInferenceClient):
    """An InferenceClient that predicts class 7 everywhere, late."""

    def __init__(self, project: Project, delay: float = 0.5) -> None:
        super().__init__(project)
        self.delay = delay
        self.requests: list[str] = []
        self.batch: list[str] = []
        self.cancelled = False
        self.stopped = False
        self.release = threading.Event()

    def _result(self, rel_path: str) -> SimpleNamespace:
        rec = self.project.get(rel_path)
        labels = np.full(rec.shape, 7, np.uint8)
        raw = np.full(rec.shape, 8, np.uint8)
        confidence = np.full(rec.shape, 100, np.uint8)
        return SimpleNamespace(labels=labels, confidence=confidence, raw_labels=raw)

    def request(self, rel_path: str) -> None:
        self.requests.append(rel_path)

        def work() -> None:  # like the real worker: compute in another thread, emit from there
            self.state_changed.emit("predicting")
            self.release.wait(timeout=30)
            time.sleep(self.delay)
            if self.stopped:
                return
            self.model_loaded.emit("v0", "CPU")
            self.prediction_ready.emit(rel_path, self._result(rel_path))
            self.state_changed.emit("idle")

        threading.Thread(target=work, daemon=True).start()

    def prefetch(self, paths: list[str]) -> None:
        pass

    def predict_batch(self, paths: list[str]) -> None:
        self.batch = list(paths)

        def work() -> None:
            for i, path in enumerate(paths, 1):
                if self.cancelled:
                    return
                self.prediction_ready.emit(path, self._result(path))
                self.progress.emit(i, len(paths), path)

        threading.Thread(target=work, daemon=True).start()

    def cancel_batch(self) -> None:
        self.cancelled = True

    def shutdown(self, timeout_ms: int = 30000) -> bool:  # the window calls this before closing the project
        self.stopped = True
        self.release.set()
        return True


def test_late_prediction_does_not_block_or_overwrite_edits(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    fake = FakeController(window.project)
    window.model.set_controller(fake)
    key(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # predict current
    assert fake.requests == ["astronaut.jpg"]
    # The worker is busy; the event loop is not: the user keeps painting meanwhile.
    key(window, Qt.Key.Key_2)
    stroke(window, [(30, 30), (90, 30)])
    doc = window.session.document
    edited = doc.labels.copy()
    assert edited[30, 60] == 1
    fake.release.set()
    qtbot.waitUntil(lambda: doc.prediction is not None, timeout=WAIT)
    np.testing.assert_array_equal(doc.labels, edited)  # edits kept
    assert (doc.prediction == 7).all()
    assert window.model_status.device_label.text().startswith("device: CPU")
    # The diff layer shows how much the user changed; accepting the prediction is one undo step.
    window.actions_by_id["diff_layer"].setChecked(True)
    qtbot.waitUntil(lambda: "changed vs prediction: 100.00%" in window.effort_label.text(), timeout=WAIT)
    key(window, Qt.Key.Key_A)
    assert (doc.labels == 7).all()
    window.actions_by_id["crf_toggle"].setChecked(True)  # before CRF
    key(window, Qt.Key.Key_A)
    assert (doc.labels == 8).all()
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.labels, edited)


def test_prediction_on_untouched_image_is_shown_and_batch_preannotates(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    fake = FakeController(window.project, delay=0.0)
    fake.release.set()
    window.model.set_controller(fake)
    doc = window.session.document
    window.actions_by_id["predict_all_new"].trigger()
    assert sorted(fake.batch) == list(DEMO_NAMES)
    qtbot.waitUntil(
        lambda: all(r.status == Status.PREDICTED for r in window.browser.model.records()), timeout=WAIT
    )
    # Untouched image: the prediction becomes what the user starts from, without being an edit.
    assert (doc.labels == 7).all() and not doc.dirty and doc.history.undo_count == 0
    assert window.project.load_mask(window.project.get("astronaut.jpg")) is None
    assert "4 predicted" in window.browser.counter.text()
    qtbot.waitUntil(lambda: not window.model_status.progress_bar.isVisible(), timeout=WAIT)
    assert window.model_status.progress_bar.value() == 4
    # Least-confident-first sorting works over predicted images.
    window.browser.set_sort_mode("least_confident")
    assert len(window.browser.model.visible_paths()) == 4


def test_palette_edit_hide_and_counts(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    palette = window.palette
    n = window.project.scheme.num_classes
    palette.add_class("crack", (250, 10, 10))
    assert window.project.scheme.num_classes == n + 1
    assert window.tool_state.active_class == n
    palette.rename_active("fissure")
    assert window.project.scheme.classes[n].name == "fissure"
    palette.recolour_active((1, 2, 3))
    assert window.project.scheme.classes[n].color == (1, 2, 3)
    window.tool_state.size = 11
    stroke(window, [(40, 40)])
    count = int(window.session.document.class_counts()[n])
    assert count > 50
    row_text = lambda: palette.list.item(palette.order.index(n)).text()  # noqa: E731
    qtbot.waitUntil(lambda: f"fissure   {count:,} px" in row_text(), timeout=WAIT)
    palette.set_hidden(n, True)
    lut = window.canvas.overlay.item.lut
    assert lut[n][3] == 0 and lut[0][3] == 255
    # Reorder changes only what number key 1 selects, not the mask indices.
    palette.select_class(n)
    for _ in range(n):
        palette.move_active(-1)
    key(window, Qt.Key.Key_1)
    assert window.tool_state.active_class == n


def test_brush_size_keys_and_cursor_true_size(make_window, image_folder):
    window = make_window(image_folder)
    window.tool_state.size = 20
    key(window, Qt.Key.Key_BracketRight)
    assert window.tool_state.size > 20
    key(window, Qt.Key.Key_BracketLeft)
    key(window, Qt.Key.Key_BracketLeft)
    assert window.tool_state.size < 20
    # Ctrl+wheel resizes the brush instead of zooming.
    view_before = window.canvas.view_state()
    size_before = window.tool_state.size
    pos = QPointF(window.canvas.to_widget(100, 100))
    wheel = QWheelEvent(
        pos,
        QPointF(window.canvas.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(window.canvas.viewport(), wheel)
    assert window.tool_state.size > size_before
    assert window.canvas.view_state() == view_before
    window.tool_state.size = 21
    QTest.mouseMove(window.canvas.viewport(), window.canvas.to_widget(100, 100))
    rect = window.canvas.brush_cursor.rect()
    assert window.canvas.brush_cursor.isVisible()
    assert rect.width() == pytest.approx(21)  # in image pixels: scales with zoom
    assert rect.center().x() == pytest.approx(100.5, abs=1.0)


def test_shortcuts_dialog_lists_every_shortcut(qtbot):
    from segstudio.gui.shortcuts import SHORTCUTS, ShortcutsDialog

    dialog = ShortcutsDialog()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(SHORTCUTS)
    texts = {dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    assert {"Undo", "Brush", "Flood fill", "Next unfinished image"} <= texts


def test_missing_panels_show_a_message_instead_of_crashing(make_window, image_folder, monkeypatch):
    import sys

    window = make_window(image_folder)
    for name in ("finetune_panel", "versions_dialog"):  # None in sys.modules: importing it raises ImportError
        monkeypatch.setitem(sys.modules, f"segstudio.gui.{name}", None)
    window.finetune_action.trigger()
    assert "not available" in window.last_error
    window.versions_action.trigger()
    assert "not available" in window.last_error


def test_unreadable_image_gets_badge_and_no_editing(make_window, image_folder, qtbot):
    (image_folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    window = make_window(image_folder)
    rec = window.browser.model.record("broken.jpg")
    assert rec is not None and rec.error
    window.browser.set_status_filter("Unreadable")
    assert window.browser.model.visible_paths() == ["broken.jpg"]
    window.open_image("broken.jpg")
    assert window.session.document is None
    assert "cannot be opened" in window.canvas.message.text()
    assert not window.canvas.paint_enabled


def test_stroke_is_repainted_on_the_canvas(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    window.opacity_slider.setValue(100)
    window.overlay.set_colors(np.array([[0, 0, 0], [0, 255, 0]], np.uint8))  # class 1 pure green
    key(window, Qt.Key.Key_2)
    window.tool_state.size = 25
    canvas = window.canvas
    target = canvas.to_widget(100, 100)
    before = canvas.viewport().grab().toImage().pixelColor(target)
    stroke(window, [(80, 100), (120, 100)])
    qtbot.waitUntil(
        lambda: canvas.viewport().grab().toImage().pixelColor(target).getRgb()[:3] == (0, 255, 0),
        timeout=WAIT,
    )
    assert before.getRgb()[:3] != (0, 255, 0)
    # Undo repaints too.
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: canvas.viewport().grab().toImage().pixelColor(target).getRgb()[:3] != (0, 255, 0),
        timeout=WAIT,
    )


def test_view_modes_zoom_and_space_pan(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    canvas = window.canvas
    key(window, Qt.Key.Key_2)
    window.tool_state.size = 21
    stroke(window, [(100, 100)])
    # Outline-only: the overlay shows the region border, not its inside.
    cols = np.flatnonzero(window.session.document.labels[100] == 1)
    assert 15 <= len(cols) <= 23
    key(window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    shown = canvas.overlay.array
    assert shown[100, cols[len(cols) // 2]] == UNLABELED and shown[100, cols[0]] == 1
    # Editing in outline mode updates the outline of the changed box.
    stroke(window, [(200, 100)])
    cols = np.flatnonzero(window.session.document.labels[100, 150:] == 1) + 150
    assert (
        canvas.overlay.array[100, cols[len(cols) // 2]] == UNLABELED
        and canvas.overlay.array[100, cols[0]] == 1
    )
    key(window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    assert canvas.overlay.array is window.session.document.labels
    # Toggle overlay visibility.
    key(window, Qt.Key.Key_O)
    assert not canvas.overlay.visible
    key(window, Qt.Key.Key_O)
    assert canvas.overlay.visible
    # 1:1 and fit.
    key(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom_factor() == pytest.approx(1.0, rel=0.02)
    key(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    (x0, x1), (y0, y1) = canvas.vb.viewRange()
    h, w = window.session.document.shape
    assert x0 <= 0 and x1 >= w - 1 and y0 <= 0 and y1 >= h - 1
    # Space + left drag pans instead of painting.
    before_labels = window.session.document.labels.copy()
    before_range = canvas.view_state()
    viewport = canvas.viewport()

    def pan_drag(button: Qt.MouseButton) -> None:
        # pyqtgraph drops move events closer than 10 ms apart (its mouseRateLimit): space them out.
        points = [canvas.to_widget(x, 200) for x in (100, 140, 180, 220)]
        QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, points[0])
        for p in points[1:]:
            qtbot.wait(30)
            QTest.mouseMove(viewport, p)
        QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, points[-1])

    QTest.keyPress(canvas, Qt.Key.Key_Space)
    pan_drag(Qt.MouseButton.LeftButton)
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    np.testing.assert_array_equal(window.session.document.labels, before_labels)
    assert canvas.view_state() != before_range
    # So does a middle-button drag.
    before_range = canvas.view_state()
    pan_drag(Qt.MouseButton.MiddleButton)
    np.testing.assert_array_equal(window.session.document.labels, before_labels)
    assert canvas.view_state() != before_range


def test_confidence_layer_and_prediction_view(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    fake = FakeController(window.project, delay=0.0)
    fake.release.set()
    window.model.set_controller(fake)
    window.predict_current()
    doc = window.session.document
    qtbot.waitUntil(lambda: doc.prediction is not None, timeout=WAIT)
    key(window, Qt.Key.Key_C)
    assert window.canvas.confidence.visible
    assert window.canvas.confidence.array is doc.confidence
    key(window, Qt.Key.Key_2)
    stroke(window, [(10, 10)])
    key(window, Qt.Key.Key_V)  # show the prediction instead of the mask
    assert window.canvas.overlay.array is doc.prediction
    key(window, Qt.Key.Key_V)
    assert window.canvas.overlay.array is doc.labels


def test_auto_predict_on_open_and_batch_cancel(make_window, image_folder, qtbot):
    window = make_window(image_folder)
    fake = FakeController(window.project)  # holds every request until released
    window.model.set_controller(fake)
    window.auto_predict_action.setChecked(True)
    assert window.settings.auto_predict
    prefetched: list[list[str]] = []
    fake.prefetch = prefetched.append
    key(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: fake.requests == ["chelsea.jpg"], timeout=WAIT)
    assert prefetched[-1] == ["coffee.jpg", "rocket.jpg"]  # the next new images, computed ahead
    window.auto_predict_action.setChecked(False)
    key(window, Qt.Key.Key_Right)
    qtbot.wait(50)
    assert fake.requests == ["chelsea.jpg"]
    # A batch can be cancelled from the status bar.
    fake.predict_batch = lambda paths: setattr(fake, "batch", list(paths))  # never finishes by itself
    window.predict_all_new()
    assert window.model_status.cancel_button.isVisibleTo(window)
    window.model_status.cancel_button.click()
    assert fake.cancelled
    assert not window.model_status.progress_bar.isVisibleTo(window)


def test_every_finished_stroke_reaches_disk_without_closing(make_window, image_folder, qtbot):
    from segstudio.core.masks import load_mask

    window = make_window(image_folder)
    key(window, Qt.Key.Key_2)
    stroke(window, [(30, 30), (60, 30)])
    key(window, Qt.Key.Key_3)
    stroke(window, [(30, 90), (60, 90)])
    labels = window.session.document.labels.copy()
    path = window.project.mask_path(window.project.get("astronaut.jpg"))

    def on_disk() -> bool:
        return path.is_file() and np.array_equal(load_mask(path), labels)

    qtbot.waitUntil(on_disk, timeout=WAIT)  # as a crash would find it: no close, no image switch


def test_switch_to_cityscapes_preset_on_a_fresh_project(make_window, image_folder):
    window = make_window(image_folder)
    combo = window.palette.preset_combo
    index = combo.findData("cityscapes")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert window.project.scheme.name == "cityscapes"
    assert window.project.scheme.num_classes == 19
    assert window.palette.list.count() == 19
    assert window.options_bar.protect_class_combo.count() == 19
    key(window, Qt.Key.Key_1)
    assert "road" in window.palette.active_label.text()


def test_real_inference_worker_end_to_end(make_window, image_folder, qtbot):
    """The real InferenceController (tiny random model, CPU): prediction arrives, edits stay."""
    torch = pytest.importorskip("torch")
    from segstudio.gui.inference_worker import InferenceController
    from segstudio.ml.spec import ModelSpec

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        window = make_window(image_folder)
        spec = ModelSpec(
            arch="lraspp_mobilenet_v3_large", weights="none", device="cpu", precision="float32", max_side=64
        )
        window.model.set_controller(InferenceController(window.project, spec=spec, parent=window.model))
        key(window, Qt.Key.Key_2)
        stroke(window, [(30, 30), (90, 30)])
        edited = window.session.document.labels.copy()
        window.predict_current()
        doc = window.session.document
        qtbot.waitUntil(lambda: doc.prediction is not None, timeout=120_000)
        np.testing.assert_array_equal(doc.labels, edited)
        assert doc.prediction.shape == doc.shape and doc.confidence is not None
        assert window.project.has_prediction(window.project.get("astronaut.jpg"))
        assert window.model_status.device_label.text().startswith("device:")
        assert "not loaded" not in window.model_status.device_label.text()
    finally:
        torch.set_num_threads(threads)


def test_finetuned_version_is_swapped_into_the_worker_and_panels_close_with_the_project(
    make_window, image_folder
):
    from segstudio.ml.spec import ModelSpec

    window = make_window(image_folder)
    fake = FakeController(window.project)
    fake.spec = ModelSpec()
    swapped = fake.models
    window.model.set_controller(fake)

    window.finetune_action.trigger()
    panel = window._panels["finetune_panel"]
    window.finetune_action.trigger()  # a second click brings the same panel back, not a second trainer
    assert window._panels["finetune_panel"] is panel

    panel.model_version_ready.emit("v3", "/models/v3/best.pt")
    assert len(swapped) == 1 and swapped[0].weights == "project" and swapped[0].version == "v3"

    shut: list[bool] = []
    panel.shutdown = lambda *args: shut.append(True)
    window.close_project()
    assert shut == [True] and window._panels == {}


def test_image_found_truncated_when_displayed_becomes_unreadable_everywhere(make_window, image_folder, qtbot):
    data = (image_folder / "coffee.jpg").read_bytes()
    (image_folder / "coffee.jpg").write_bytes(data[: len(data) // 3])  # header fine, pixels cut off
    window = make_window(image_folder)
    assert window.browser.model.record("coffee.jpg").error is None  # the scan reads headers only
    window.open_image("coffee.jpg")
    qtbot.waitUntil(lambda: bool(window.browser.model.record("coffee.jpg").error), timeout=WAIT)
    assert "truncated" in window.browser.model.record("coffee.jpg").error
    assert "1 unreadable" in window.browser.counter.text()
    window.browser.set_status_filter("Unreadable")
    assert window.browser.model.visible_paths() == ["coffee.jpg"]
    with Project.open_for_reading(image_folder) as project:  # recorded in the project, as `info` shows
        assert project.summary()["unreadable"] == 1
