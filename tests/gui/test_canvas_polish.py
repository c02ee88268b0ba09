"""Canvas polish: outline width follows the zoom, confidence legend, tool cursors, no stale read-out."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

from segstudio.gui.canvas import outline_of, outline_reach
from segstudio.gui.tools import Tool

WAIT = 20_000


def test_outline_reach_keeps_lines_two_screen_pixels_wide():
    assert outline_reach(4.0) == 1 and outline_reach(1.0) == 1
    assert outline_reach(0.5) == 2 and outline_reach(0.25) == 4
    assert outline_reach(0.01) == 8 and outline_reach(float("nan")) == 1
    labels = np.zeros((40, 40), np.uint8)
    labels[:, 20:] = 1
    for reach in (1, 3):
        border = outline_of(labels, reach) != 255
        assert border[10].sum() == 2 * reach  # `reach` pixels each side of the edge
        assert border[10, 20 - reach : 20 + reach].all()


def test_outline_follows_zoom_and_edits_stay_correct(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    doc = window.session.document
    window.actions_by_id["outline_mode"].setChecked(True)
    assert window.canvas.overlay.item.opacity() == 1.0  # thin lines drawn opaque
    window.canvas.vb.scaleBy((4, 4))  # zoom out: image pixels get smaller than screen pixels
    expected = outline_reach(window.canvas.zoom_factor())
    assert expected > 1
    qtbot.waitUntil(lambda: window.overlay.reach == expected, timeout=WAIT)
    window.tool_state.tool = Tool.FILL
    window.tools.press(5, 5)
    window.tools.release(5, 5)
    np.testing.assert_array_equal(window.overlay._outline, outline_of(doc.labels, expected))


def test_confidence_legend_and_tool_cursors(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    legend = window.confidence_legend
    assert not legend.isVisible()
    window.actions_by_id["confidence_layer"].setChecked(True)
    assert legend.isVisible() and legend.parent() is window.canvas
    assert window.canvas.rect().contains(legend.geometry())
    viewport = window.canvas.viewport()
    window.tool_state.tool = Tool.FILL
    fill = viewport.cursor().pixmap()
    window.tool_state.tool = Tool.POLYGON
    polygon = viewport.cursor().pixmap()
    assert not fill.isNull() and not polygon.isNull() and fill.toImage() != polygon.toImage()
    window.tool_state.tool = Tool.BRUSH
    assert viewport.cursor().pixmap().isNull()  # the brush shows its own circle instead


def test_cursor_readout_is_cleared_on_image_switch_and_leaving(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    first = window.session.record.rel_path
    window._hovered(12.0, 14.0)
    assert window.pos_label.text() == "x 12, y 14"
    window.actions_by_id["next_image"].trigger()
    qtbot.waitUntil(lambda: window.session.record.rel_path != first, timeout=WAIT)
    assert window.pos_label.text() == "" and window.class_label.text() == ""
    window._hovered(3.0, 4.0)
    assert window.pos_label.text()
    QApplication.sendEvent(window.canvas, QEvent(QEvent.Type.Leave))
    assert window.pos_label.text() == ""


def _path_points(path) -> list[tuple[float, float]]:
    return [(path.elementAt(i).x, path.elementAt(i).y) for i in range(path.elementCount())]


def test_scribble_trail_is_an_open_line_and_the_polygon_preview_closed(shown_window, demo_photos, qtbot):
    """A scribble being drawn shows the stroke itself, not a loop back to its start (QA under Xvfb)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window = shown_window(demo_photos)
    canvas, viewport = window.canvas, window.canvas.viewport()
    qtbot.waitUntil(lambda: window.tools.smart.is_ready, timeout=WAIT)  # no engine preparation left running
    window.tool_state.tool = Tool.SCRIBBLE
    stroke = [(40, 60), (80, 70), (120, 60), (160, 75)]
    QTest.mousePress(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, canvas.to_widget(*stroke[0])
    )
    for x, y in stroke[1:]:
        QTest.mouseMove(viewport, canvas.to_widget(x, y))
    drawn = _path_points(canvas.polygon_item.path())
    start, end = drawn[0], drawn[-1]
    assert end != start  # no closing segment back to the first point
    assert abs(end[0] - (stroke[-1][0] + 0.5)) < 1.5 and abs(end[1] - (stroke[-1][1] + 0.5)) < 1.5
    QTest.mouseRelease(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, canvas.to_widget(*stroke[-1])
    )
    assert canvas.polygon_item.path().isEmpty()

    window.tool_state.tool = Tool.POLYGON
    for x, y in stroke[:3]:
        QTest.mouseClick(
            viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, canvas.to_widget(x, y)
        )
    drawn = _path_points(canvas.polygon_item.path())
    assert drawn[-1] == drawn[0]  # the polygon preview stays closed
