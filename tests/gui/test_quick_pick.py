"""Quick class choice: type-to-search popup and a palette find field, usable with 19+ classes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from segstudio.core.project import Project
from segstudio.core.schemes import get_scheme
from segstudio.gui.quick_pick import rank_classes


def test_rank_puts_prefix_matches_first_in_palette_order():
    names = ["road", "sidewalk", "traffic light", "traffic sign", "rider", "car", "bicycle"]
    order = list(range(len(names)))
    assert rank_classes("r", names, order) == [0, 4, 2, 3, 5]  # road, rider; then ...r...: traffic x2, car
    assert rank_classes("si", names, order) == [1, 3]  # sidewalk, then the word "sign"
    assert rank_classes("light", names, order) == [2]
    assert rank_classes("", names, [6, 0]) == [6, 0]
    assert rank_classes("zzz", names, order) == []


def test_slash_opens_the_picker_and_typing_picks_a_class_beyond_key_10(shown_window, demo_photos, qtbot):
    with Project.open(demo_photos, scheme=get_scheme("cityscapes")):
        pass
    window = shown_window(demo_photos)
    names = window.project.scheme.names
    assert len(names) >= 19
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Slash)
    picker = window.quick_pick
    qtbot.waitUntil(picker.isVisible, timeout=5000)
    QTest.keyClicks(picker.edit, "bicy")
    assert picker.list.count() == 1
    QTest.keyClick(picker.edit, Qt.Key.Key_Return)
    assert not picker.isVisible()
    bicycle = names.index("bicycle")
    assert window.palette.order.index(bicycle) >= 10  # no number key reaches it
    assert window.tool_state.active_class == bicycle and "bicycle" in window.palette.active_label.text()
    # Arrow keys move in the filtered list while typing.
    window.actions_by_id["quick_class"].trigger()
    QTest.keyClicks(picker.edit, "t")
    QTest.keyClick(picker.edit, Qt.Key.Key_Down)
    QTest.keyClick(picker.edit, Qt.Key.Key_Return)
    assert window.tool_state.active_class == rank_classes("t", names, window.palette.order)[1]


def test_palette_find_field_filters_rows_and_enter_selects(shown_window, demo_photos, qtbot):
    with Project.open(demo_photos, scheme=get_scheme("cityscapes")):
        pass
    window = shown_window(demo_photos)
    palette = window.palette
    palette.find.setText("ter")
    shown = [
        palette.list.item(r).text()
        for r in range(palette.list.count())
        if not palette.list.item(r).isHidden()
    ]
    assert len(shown) == 1 and "terrain" in shown[0]
    QTest.keyClick(palette.find, Qt.Key.Key_Return)
    assert window.tool_state.active_class == window.project.scheme.names.index("terrain")
