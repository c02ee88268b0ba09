"""Side panels keep the width the user gave them; the canvas keeps a usable share of a small window."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget

from segstudio.core.project import Status


def _dock(window, name: str) -> QDockWidget:
    return window.findChild(QDockWidget, name)


def test_images_panel_width_is_stable_when_the_counter_line_grows(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    dock, palette = _dock(window, "browser_dock"), _dock(window, "palette_dock")
    QApplication.processEvents()
    before, canvas_before = dock.width(), window.canvas.width()
    short = window.browser.counter.text()
    # Every status at once (the longest counter line), as after pre-annotation, then a filter.
    records = window.browser.model.records()
    for rec, status in zip(records, (Status.PREDICTED, Status.IN_PROGRESS, Status.SKIPPED, Status.DONE)):
        window.browser.update_record(replace(rec, status=status))
    window.browser.update_record(replace(records[0], error="cannot identify image file"))
    window.browser.set_status_filter("Unfinished")
    long = window.browser.counter.text()
    assert len(long) > len(short) + 30 and "showing" in long
    window.palette.active_label.setText("Active: " + "a very long class name " * 5)
    for _ in range(5):
        QApplication.processEvents()
    assert dock.width() == before
    assert palette.width() > 0 and window.canvas.width() == canvas_before


def test_canvas_keeps_a_usable_share_of_a_small_window(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    window.resize(640, 480)
    for _ in range(5):
        QApplication.processEvents()
    # Qt may keep the window wider than asked (every panel's minimum); the canvas still gets its share.
    assert window.canvas.width() >= 360
    assert window.canvas.width() >= 0.4 * window.width(), (window.width(), window.canvas.width())


def test_a_panel_saved_too_wide_is_narrowed_on_restore(shown_window, qtbot):
    first = shown_window(size=(1400, 900))
    dock = _dock(first, "browser_dock")
    first.resizeDocks([dock], [800], Qt.Orientation.Horizontal)  # what the old self-widening left behind
    QApplication.processEvents()
    assert dock.width() > 0.4 * first.width()
    first.close()  # saves the layout
    second = shown_window(size=(1400, 900))
    qtbot.waitUntil(lambda: _dock(second, "browser_dock").width() <= 0.4 * second.width(), timeout=5000)
