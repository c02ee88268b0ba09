"""The canvas on plain Qt Graphics View: the zoom/pan rules pyqtgraph's ViewBox had, and in-place redraws."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest

from segstudio.core.history import Box
from segstudio.gui.canvas import CanvasView, overlay_lut


@pytest.fixture
def canvas(qtbot):
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.zeros((720, 960, 3), np.uint8))
    return view


def test_fit_shows_the_whole_image_with_one_percent_padding_at_one_scale(canvas):
    (x0, x1), (y0, y1) = canvas.vb.viewRange()  # figures pyqtgraph 0.14's ViewBox gave for the same calls
    assert (x0, x1, y0, y1) == pytest.approx((-9.6, 969.6, -7.2, 727.2))
    canvas.vb.setRange(xRange=(10, 110), yRange=(20, 90), padding=0)
    assert canvas.vb.viewRange() == [pytest.approx([10, 110]), pytest.approx([17.5, 92.5])]  # 4:3 viewport
    canvas.resize(400, 600)  # the asked-for range stays whole and centred
    canvas.vb.resize(canvas.viewport().width(), canvas.viewport().height())
    assert canvas.vb.viewRange() == [pytest.approx([10, 110]), pytest.approx([-20, 130])]
    assert canvas.to_widget(0, 0) == QPoint(-38, 82)
    assert canvas.to_image(QPointF(0, 0)) == pytest.approx((9.5, -20.5))


def test_scale_by_zooms_about_the_centre_and_one_axis_factor_zooms_both(canvas):
    canvas.vb.scaleBy((4, 4))
    assert canvas.vb.viewRange()[0] == pytest.approx([-1478.4, 2438.4])
    canvas.fit()
    canvas.vb.scaleBy(x=1, y=0.5, center=QPointF(480, 360))
    assert canvas.vb.viewRange() == [pytest.approx([235.2, 724.8]), pytest.approx([176.4, 543.6])]


def test_wheel_zooms_in_about_the_pointer(canvas):
    pos = QPoint(200, 150)
    under = canvas.to_image(QPointF(pos))
    before = canvas.zoom_factor()
    QTest.mouseMove(canvas.viewport(), pos)
    event = QWheelEvent(
        QPointF(pos),
        QPointF(canvas.viewport().mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    canvas.wheelEvent(event)
    assert canvas.zoom_factor() == pytest.approx(before / 1.02**-15)  # one step: ~1.35x closer
    assert canvas.to_image(QPointF(pos)) == pytest.approx(under, abs=1e-6)


def test_middle_drag_pans_with_the_pointer_and_right_drag_zooms(canvas):
    vp = canvas.viewport()
    start, end = QPoint(300, 300), QPoint(360, 260)
    grabbed = canvas.to_image(QPointF(start))
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(vp, end)
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, end)
    assert canvas.to_image(QPointF(end)) == pytest.approx(grabbed, abs=1e-6)
    before = canvas.zoom_factor()
    QTest.mousePress(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(vp, start + QPoint(0, 40))  # drag down: zoom out
    QTest.mouseRelease(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, start + QPoint(0, 40))
    assert canvas.zoom_factor() == pytest.approx(before / 1.02**40)


def test_label_layer_draws_the_live_array_and_repaints_an_edited_box(canvas, qtbot):
    canvas.vb.setRange(xRange=(0, 960), yRange=(0, 720), padding=0)
    labels = np.full((720, 960), 255, np.uint8)
    canvas.overlay.set_lut(overlay_lut(np.array([[255, 0, 0], [0, 255, 0]], np.uint8)))
    canvas.overlay.item.setOpacity(1.0)
    canvas.overlay.set_array(labels)
    qtbot.wait(20)
    inside, outside = canvas.to_widget(500, 400), canvas.to_widget(100, 100)
    assert canvas.viewport().grab().toImage().pixelColor(inside).getRgb()[:3] == (0, 0, 0)  # unlabeled: clear
    labels[380:420, 480:520] = 1  # edited in place, as the document does
    canvas.overlay.update_region(Box(480, 380, 520, 420))
    qtbot.wait(20)
    shot = canvas.viewport().grab().toImage()
    assert shot.pixelColor(inside).getRgb()[:3] == (0, 255, 0)
    assert shot.pixelColor(outside).getRgb()[:3] == (0, 0, 0)
    canvas.overlay.set_lut(overlay_lut(np.array([[255, 0, 0], [0, 0, 255]], np.uint8)))  # recolour
    qtbot.wait(20)
    assert canvas.viewport().grab().toImage().pixelColor(inside).getRgb()[:3] == (0, 0, 255)


def test_prompt_marks_keep_their_screen_size_at_any_zoom(canvas):
    from segstudio.gui.prompt_marks import MARK_SIZE, PromptMarks

    marks = PromptMarks(canvas.vb)
    marks.show([(10, 10), (50, 60)], [(100, 100)])
    assert len(marks.marks) == 3
    for zoom in (0.25, 4.0):
        canvas.vb.scaleBy(zoom)
        item = marks.marks[0]
        rect = item.deviceTransform(canvas.viewportTransform()).mapRect(item.boundingRect())
        assert rect.width() == pytest.approx(MARK_SIZE + 1.5, abs=0.5)  # plus the white outline
        assert rect.center().x() == pytest.approx(canvas.to_widget(10, 10).x(), abs=1)
    marks.show([], [])
    assert marks.marks == [] and not [i for i in canvas.scene().items() if i.zValue() == 95]
