"""The smaller first-hour findings of issue #19, each acted out as a user would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QToolBar

from segstudio.core.project import Status
from segstudio.gui.browser import SORT_LEAST_CONFIDENT
from segstudio.gui.tools import Tool

NO = Qt.KeyboardModifier.NoModifier


def _settle(times: int = 5) -> None:
    for _ in range(times):
        QApplication.processEvents()


def test_status_message_leaves_the_xy_readout_visible(qtbot, shown_window, small_folder):
    window = shown_window(small_folder)
    QTest.mouseMove(window.canvas.viewport(), window.canvas.to_widget(10, 12))
    qtbot.waitUntil(lambda: window.pos_label.text() == "x 10, y 12")
    window.statusBar().showMessage("Predictions will use a very long path name " * 2, 5000)
    _settle()
    assert window.pos_label.isVisible() and window.class_label.isVisible()
    assert window.pos_label.visibleRegion().boundingRect().width() >= window.pos_label.sizeHint().width() - 2


def test_class_pixel_counts_follow_a_wand_drag_while_it_lasts(qtbot, shown_window, small_folder):
    window = shown_window(small_folder)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_W)
    assert window.tool_state.tool == Tool.WAND
    viewport, canvas = window.canvas.viewport(), window.canvas
    counts: list[np.ndarray] = []
    window.overlay.counts_changed.connect(lambda c: counts.append(None if c is None else c.copy()))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(5, 20))
    for step in range(16):  # a continuous drag: a move every 40 ms, no pause
        QTest.mouseMove(viewport, canvas.to_widget(5 + 2 * step, 20))
        qtbot.wait(40)
    during = len(counts)
    doc = window.session.document
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(35, 20))
    assert during >= 2, "the palette's counts were not refreshed during the drag"
    qtbot.waitUntil(lambda: counts and np.array_equal(counts[-1], doc.class_counts()))
    row = window.palette.order.index(window.palette.active_class)
    active_count = int(doc.class_counts()[window.palette.active_class])
    assert f"{active_count:,} px" in window.palette.list.item(row).text()


def test_fine_tune_labels_say_which_figure_is_which(qtbot, small_folder):
    from segstudio.core.project import Project
    from segstudio.gui.finetune_panel import FinetunePanel

    with Project.open(small_folder) as project:
        panel = FinetunePanel(project)
        qtbot.addWidget(panel)
        panel.handle_event({"event": "val", "epoch": 0, "baseline": True, "miou": 0.505, "val_images": 4})
        assert panel.estimate_label.text().startswith("Base model before training: val mIoU")
        panel.handle_event(
            {
                "event": "val",
                "epoch": 3,
                "miou": 0.418,
                "val_images": 4,
                "gain": {"value": -0.087, "n": 4},
            }
        )
        text = panel.estimate_label.text()
        assert text.startswith("Latest evaluation (epoch 3): val mIoU") and "vs the base model" in text


def test_undoing_every_edit_returns_the_image_to_its_previous_status(qtbot, shown_window, small_folder):
    window = shown_window(small_folder)
    rec = window.session.record
    assert rec.status == Status.NEW
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_B)
    viewport, canvas = window.canvas.viewport(), window.canvas
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(10, 10))
    QTest.mouseMove(viewport, canvas.to_widget(30, 20))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(30, 20))
    qtbot.waitUntil(lambda: window.project.get(rec.rel_path).status == Status.IN_PROGRESS, timeout=10_000)
    assert window.project.has_mask(rec)
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.project.get(rec.rel_path).status == Status.NEW, timeout=10_000)
    assert not window.project.has_mask(rec)
    row = window.browser.model.row_of(rec.rel_path)
    assert window.browser.model.records()[0] is not None and row is not None
    assert window.browser.model.record(rec.rel_path).status == Status.NEW
    assert "in progress" not in window.browser.counter.text()


def test_800_by_550_window_keeps_a_360_px_canvas_and_nothing_is_wider(qtbot, shown_window, small_folder):
    window = shown_window(small_folder, size=(800, 550))
    _settle(10)
    assert window.width() == 800, "the panels' minimums force the window wider than asked"
    assert window.canvas.width() >= 360


def test_no_toolbar_is_cut_at_1440_px(qtbot, shown_window, small_folder):
    window = shown_window(small_folder, size=(1440, 900))
    _settle(10)
    for bar in window.findChildren(QToolBar):
        if bar.isVisible():
            assert bar.width() >= bar.sizeHint().width(), (
                bar.objectName(),
                bar.width(),
                bar.sizeHint().width(),
            )


def test_side_panels_get_their_width_back_after_shrink_and_regrow(qtbot, shown_window, small_folder):
    window = shown_window(small_folder, size=(1400, 900))
    _settle(10)
    dock = window.findChild(QDockWidget, "browser_dock")
    window.resizeDocks([dock], [330], Qt.Orientation.Horizontal)  # the user's chosen width
    _settle(10)
    before = dock.width()
    window.resize(800, 550)
    _settle(10)
    assert dock.width() < before
    window.resize(1400, 900)
    _settle(10)
    assert abs(dock.width() - before) <= 2
    window.close()  # saves the layout
    again = shown_window(size=(1400, 900))
    _settle(10)
    assert abs(again.findChild(QDockWidget, "browser_dock").width() - before) <= 2


def _many_images(tmp_path: Path, n: int = 40) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / f"f{i:02d}.png")
    return folder


def test_least_confident_sort_shows_its_top_row_and_is_restored_on_reopen(qtbot, shown_window, tmp_path):
    folder = _many_images(tmp_path)
    window = shown_window(folder, size=(1000, 600))
    project = window.project
    for i, rec in enumerate(project.images()):
        labels = np.zeros((24, 32), np.uint8)
        confidence = np.full((24, 32), 250 - 5 * i, np.uint8)  # the later the name, the less confident
        window.browser.update_record(project.save_prediction(rec, labels, confidence, "v0"))
    window.open_image("f00.png")  # the most confident: last in least-confident order
    combo = window.browser.sort_combo
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)  # "Least confident first"
    _settle(5)
    assert combo.currentData() == SORT_LEAST_CONFIDENT
    view = window.browser.view
    top = view.indexAt(QPoint(5, 5))
    assert top.isValid() and top.row() == 0, "the first (least confident) row is scrolled out of view"
    assert view.model().index(0, 0).data() == "f39.png"
    window.close()
    again = shown_window(folder)
    assert again.browser.sort_combo.currentData() == SORT_LEAST_CONFIDENT
    assert again.browser.model.path_at(0) == "f39.png"


def test_first_start_window_fits_a_screen_smaller_than_1400_by_900(qtbot):
    """No saved geometry: the window is 1400x900 where that fits, else 95 % of the screen's free area
    (the offscreen test screen is 800x800, like a small laptop it has no room for 1400x900)."""
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    area = QApplication.primaryScreen().availableGeometry()
    assert area.width() < 1400 or area.height() < 900, "this test needs a screen smaller than 1400x900"
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() <= area.width() and window.height() <= area.height()
    assert window.width() >= 0.9 * min(1400, area.width())  # not needlessly small either


def test_switching_images_writes_where_the_user_is_once_they_pause(qtbot, shown_window, small_folder):
    """PageDown through the images: no synced write per switch on the GUI thread; the last image is
    written once the user pauses, and the project reopens on it."""
    window = shown_window(small_folder)
    writes: list[str] = []
    real = window.project.set_setting
    window.project.set_setting = lambda key, value: (writes.append(key), real(key, value))[1]
    window.canvas.setFocus()
    for _ in range(2):
        QTest.keyClick(window.canvas, Qt.Key.Key_PageDown)
        qtbot.waitUntil(lambda: window.session.document is not None)
    last = window.session.record.rel_path
    assert last == "img2.png" and writes == []
    qtbot.waitUntil(lambda: "gui.last_image" in writes, timeout=5000)
    assert sorted(writes) == ["gui.last_image", "gui.view"]
    assert window.project.get_setting("gui.last_image") == last
    folder = window.project.image_dir
    window.close()
    again = shown_window(folder)
    assert again.session.record.rel_path == last
