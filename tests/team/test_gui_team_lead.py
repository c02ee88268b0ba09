"""A lead's tools in the window: removing images with the browser's context menu (other members' browsers
follow at once, a restore brings the image back to them), and taking an image out of consensus from the
Compare dialog."""

from __future__ import annotations

import time

from segstudio.cli import main
from segstudio.team.project import TeamProject
from tests.team.test_gui_team import WAIT, _click_in_browser, _open_window


def _right_click(view, rel_path: str) -> None:
    """What the platform sends the list when the user right-clicks a row."""
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    index = view.model().index(view.model().row_of(rel_path))
    view.scrollTo(index)
    pos = view.visualRect(index).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, view.viewport().mapToGlobal(pos))
    QApplication.sendEvent(view.viewport(), event)


def _ctrl_click(view, rel_path: str) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    index = view.model().index(view.model().row_of(rel_path))
    view.scrollTo(index)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     view.visualRect(index).center())  # fmt: skip


def test_a_lead_removes_the_selected_images_from_the_browser_context_menu(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(
        QMessageBox, "question", lambda parent, title, text, *a: (asked.append(text), answers.pop(0))[1]
    )
    window = _open_window(qtbot, team, image_folder, monkeypatch, "lena")
    try:
        view, remover = window.browser.view, window.team_presence.remover
        _click_in_browser(qtbot, window, "b_coffee.png")  # the open image is one of those removed
        _ctrl_click(view, "c_astronaut.png")
        assert window.session.record.rel_path == "b_coffee.png"  # Ctrl-click selects, opens nothing
        _right_click(view, "c_astronaut.png")
        qtbot.waitUntil(remover.menu.isVisible, timeout=WAIT)
        action = next(a for a in remover.menu.actions() if a.text() == "Remove 2 images from project…")
        action.trigger()  # the user cancels the confirmation: nothing happens
        assert "Remove 2 image(s) from the team project?" in asked[0]
        assert "  b_coffee.png\n  c_astronaut.png\n" in asked[0] and "team restore" in asked[0]
        qtbot.wait(300)
        assert view.model().row_of("c_astronaut.png") is not None
        remover.menu.close()

        _right_click(view, "c_astronaut.png")  # still selected: both again
        qtbot.waitUntil(remover.menu.isVisible, timeout=WAIT)
        remover.remove_action.trigger()
        qtbot.waitUntil(lambda: view.model().row_of("c_astronaut.png") is None, timeout=WAIT)
        assert view.model().row_of("b_coffee.png") is None
        assert "Removed 2 image(s) from the team project" in window.statusBar().currentMessage()
        qtbot.waitUntil(
            lambda: window.session.record is not None and window.session.record.rel_path == "a_cat.png",
            timeout=WAIT,
        )  # the open image went: the window moved on
        assert window.browser.counter.text().startswith("0 / 2 done")
        with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
            assert sorted(r.record.rel_path for r in lena.removed_images()) == [
                "b_coffee.png",
                "c_astronaut.png",
            ]
            coffee = lena.find_removed("b_coffee.png")
            qtbot.waitUntil(lambda: lena.lease_holder(coffee) is None, timeout=WAIT)  # its lease given back
    finally:
        window.close()


def test_other_members_browsers_follow_a_removal_and_a_restore_at_once(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from PySide6.QtCore import Qt

    from segstudio.gui import team_view

    window = _open_window(qtbot, team, image_folder, monkeypatch, "alice")
    window.team_presence.timer.setInterval(600_000)  # only a notice can bring the change now
    monkeypatch.setattr(team_view, "POLL_MS", 600_000)
    try:
        assert window.team_presence.remover is None  # an annotator is not offered removal
        assert window.browser.view.contextMenuPolicy() != Qt.ContextMenuPolicy.CustomContextMenu
        qtbot.waitUntil(window.team_presence.listener.listening.is_set, timeout=WAIT)
        qtbot.wait(500)  # the first poll is over
        other = next(
            r.rel_path for r in window.browser.model.records() if r.rel_path != window.session.record.rel_path
        )
        started = time.monotonic()
        assert main(["team", "remove", str(image_folder), other, "--db", team.url("lena")]) == 0
        qtbot.waitUntil(lambda: window.browser.model.row_of(other) is None, timeout=5000)
        assert time.monotonic() - started < 5.0
        assert "1 image(s) removed from the team project" in window.statusBar().currentMessage()
        assert main(["team", "restore", str(image_folder), other, "--db", team.url("lena")]) == 0
        qtbot.waitUntil(lambda: window.browser.model.row_of(other) is not None, timeout=5000)
    finally:
        window.close()


def test_a_lead_takes_an_image_out_of_consensus_from_the_compare_dialog(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    import numpy as np
    from PySide6.QtCore import Qt

    from segstudio.core.project import Status
    from tests.team.test_consensus import _annotate, _b_of, _halves

    assert main(["team", "assign", str(image_folder), "a_cat.png", "--db", team.url("lena"),
                 "--to", "alice,bob", "--consensus", "1"]) == 0  # fmt: skip
    a, b = _halves(), _b_of(_halves())
    with (
        TeamProject.join(image_folder, team.url("alice"), state_dir=tmp_path / "a", heartbeat=False) as alice,
        TeamProject.join(image_folder, team.url("bob"), state_dir=tmp_path / "b", heartbeat=False) as bob,
    ):
        _annotate(alice, "a_cat.png", a)
        _annotate(bob, "a_cat.png", b, Status.IN_PROGRESS)  # bob has not finished: no resolution yet
    window = _open_window(qtbot, team, image_folder, monkeypatch, "lena")
    try:
        _click_in_browser(qtbot, window, "a_cat.png")
        window.team_presence.compare_action.trigger()
        dialog = window.team_presence.compare_dialog
        qtbot.waitUntil(lambda: dialog.keep_b.isEnabled(), timeout=WAIT)
        assert dialog.keep_a.text() == "Keep only A (alice)" and dialog.keep_b.text() == "Keep only B (bob)"
        assert not dialog.take_b.isEnabled()  # resolving waits for both; taking one out does not
        qtbot.mouseClick(dialog.keep_b, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.kept == "B" and not dialog.isVisible(), timeout=WAIT)
        qtbot.waitUntil(
            lambda: window.session.document is not None and np.array_equal(window.session.document.labels, b),
            timeout=WAIT,
        )
        assert (
            "a_cat.png is out of consensus: an ordinary image of bob" in window.statusBar().currentMessage()
        )
        with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
            cat = lena.get("a_cat.png")
            found = lena.consensus_of(cat)
            assert found.kept == "B" and lena.assignments()[cat.id] == "bob"
            assert cat.status == Status.IN_PROGRESS and dialog.version == found.resolved_version
    finally:
        window.close()


def test_an_image_open_in_a_members_window_closes_when_a_lead_removes_it(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    # a consensus annotator works on their branch without a lease, so nothing stops the lead
    assert main(["team", "assign", str(image_folder), "b_coffee.png", "--db", team.url("lena"),
                 "--to", "alice,bob", "--consensus", "1"]) == 0  # fmt: skip
    window = _open_window(qtbot, team, image_folder, monkeypatch, "alice")
    try:
        _click_in_browser(qtbot, window, "b_coffee.png")
        assert main(["team", "remove", str(image_folder), "b_coffee.png", "--db", team.url("lena")]) == 0
        qtbot.waitUntil(lambda: window.browser.model.row_of("b_coffee.png") is None, timeout=WAIT)
        qtbot.waitUntil(
            lambda: window.session.record is not None and window.session.record.rel_path != "b_coffee.png",
            timeout=WAIT,
        )
        message = window.statusBar().currentMessage()
        assert "1 image(s) removed from the team project; b_coffee.png was removed by a lead" in message
    finally:
        window.close()
