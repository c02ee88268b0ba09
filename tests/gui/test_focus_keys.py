"""Number keys and tool letters act whatever control holds the focus, except text fields."""

from __future__ import annotations

from PySide6.QtCore import Qt

from segstudio.gui.tools import Tool


def _focus(qtbot, window, widget) -> None:
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: widget.hasFocus() or widget.isAncestorOf(window.focusWidget() or widget))


def test_number_key_in_the_size_box_picks_a_class_not_a_size(qtbot, shown_window, small_folder):
    window = shown_window(small_folder)
    spin = window.options_bar.size_spin
    size = spin.value()
    window.palette.select_class(0)
    _focus(qtbot, window, spin)
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_4)
    assert window.palette.active_class == window.palette.order[3]
    assert window.tool_state.active_class == window.palette.order[3]
    assert spin.value() == size
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_W)  # a tool letter too
    assert window.tool_state.tool == Tool.WAND
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Up)  # the spin box keeps its own arrows
    assert spin.value() == size + 1


def test_after_the_problems_panel_closes_number_keys_still_pick_classes(qtbot, shown_window, small_folder):
    window = shown_window(small_folder)
    qtbot.mouseClick(window.problems_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.problems_dock.isVisible)
    qtbot.mouseClick(window.problems_button, Qt.MouseButton.LeftButton)  # closed again
    focused = window.focusWidget() or window
    qtbot.keyClick(focused, Qt.Key.Key_2)
    assert window.palette.active_class == window.palette.order[1]


def test_text_fields_keep_their_keys(qtbot, shown_window, small_folder):
    window = shown_window(small_folder)
    window.palette.select_class(0)
    find = window.palette.find
    _focus(qtbot, window, find)
    qtbot.keyClick(find, Qt.Key.Key_4)
    qtbot.keyClick(find, Qt.Key.Key_W)
    assert find.text() == "4w"
    assert window.palette.active_class == 0 and window.tool_state.tool != Tool.WAND
