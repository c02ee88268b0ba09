"""Box tool: after a box, a small left click refines the object (positive), Shift/right click negative.

Real mouse events on the canvas, on Pascal VOC 2011_000006 (shared test data) with its true mask.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from segstudio.core.interactive.robot import interior_point
from segstudio.gui.tools import Tool
from tests.gui.conftest import clicks_shown

CHAIR = 9
NO = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def chair_window(qtbot, shown_window, labelme_example: Path, tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy2(labelme_example / "data_annotated" / "2011_000006.jpg", folder)
    truth = np.array(Image.open(labelme_example / "expected_voc" / "SegmentationClass" / "2011_000006.png"))
    _n, comp, stats, _ = cv2.connectedComponentsWithStats((truth == CHAIR).view(np.uint8))
    chair = comp == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
    window = shown_window(folder)
    window.tool_state.active_class = CHAIR
    return window, chair


def test_small_left_click_after_a_box_is_a_positive_refinement(qtbot, chair_window):
    window, chair = chair_window
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert window.tool_state.tool == Tool.BOX
    window.tool_state.engine = "grabcut"
    smart = window.tools.smart
    qtbot.waitUntil(lambda: smart.is_ready and "grabcut" in smart.engines, timeout=30_000)
    viewport, canvas = window.canvas.viewport(), window.canvas
    ys, xs = np.nonzero(chair)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(xs.min(), ys.min()))
    QTest.mouseMove(viewport, canvas.to_widget((xs.min() + xs.max()) / 2, ys.max()))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(xs.max(), ys.max()))
    clicks_shown(window)
    session = smart.session
    assert session is not None and session.prompts.box is not None
    # A left click (press and release at one place) on the chair: a positive click, not a dropped box.
    x, y, _ = interior_point(chair)
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(x, y))
    clicks_shown(window)
    assert len(session.prompts.positives) == 1
    assert window.session.document.labels[y, x] == CHAIR
    # Right click and Shift+left click outside the chair: negatives.
    bx, by, _ = interior_point(~chair)
    QTest.mouseClick(viewport, Qt.MouseButton.RightButton, NO, canvas.to_widget(bx, by))
    QTest.mouseClick(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, canvas.to_widget(bx, by)
    )
    clicks_shown(window)
    assert len(session.prompts.negatives) == 2
    assert window.session.document.labels[by, bx] != CHAIR
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert window.session.document.history.undo_count == 1  # box + refinements: one undo step
