"""The window on a team project, as a member uses it: File -> Open team project..., the browser shows
who else is editing an image, and opening an image takes its lease."""

from __future__ import annotations

import pytest

from segstudio.core.project import Project
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project

WAIT = 30_000


@pytest.fixture
def team(team_db, image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    Project.open(image_folder).close()
    create_team_project(image_folder, team_db.url("lena"))
    return team_db


def _row_text(window, rel_path: str) -> str:
    from PySide6.QtCore import Qt

    model = window.browser.model
    row = model.row_of(rel_path)
    return "" if row is None else str(model.data(model.index(row), Qt.ItemDataRole.DisplayRole))


def test_open_team_project_shows_other_editors_and_takes_the_lease(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    with TeamProject.join(image_folder, team.url("bob"), state_dir=tmp_path / "bob") as bob:
        coffee = bob.get("b_coffee.png")
        bob.take_lease(coffee)
        monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (team.url("alice"), True))
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(image_folder))
        window = MainWindow(AppSettings())
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        try:
            file_menu = next(
                a.menu()
                for a in window.menuBar().actions()
                if a.menu() and window.open_team_action in a.menu().actions()
            )
            assert file_menu is not None
            window.open_team_action.trigger()
            qtbot.waitUntil(
                lambda: window.session is not None and window.session.document is not None, timeout=WAIT
            )
            assert isinstance(window.project, TeamProject) and window.project.member == "alice"
            qtbot.waitUntil(lambda: "being edited by bob" in _row_text(window, "b_coffee.png"), timeout=WAIT)
            opened = window.session.record
            qtbot.waitUntil(lambda: bob.lease_holder(opened) == "alice", timeout=WAIT)
            bob.release_lease(coffee)
            qtbot.waitUntil(lambda: "being edited" not in _row_text(window, "b_coffee.png"), timeout=WAIT)
        finally:
            window.close()
        assert bob.lease_holder(opened) is None  # closing the window gave the lease back


def test_a_save_while_the_server_is_down_shows_as_not_yet_on_the_server_until_it_lands(
    qtbot, team, image_folder, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    import segstudio.team.editing as editing
    from segstudio.gui import team_view
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    monkeypatch.setattr(team_view, "POLL_MS", 300)
    monkeypatch.setattr(editing, "RETRY_SECONDS", 0.3)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (team.url("alice"), True))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(image_folder))
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        window.open_team_action.trigger()
        qtbot.waitUntil(
            lambda: window.session is not None and window.session.document is not None, timeout=WAIT
        )
        opened = window.session.record
        team.server.stop("fast")
        try:
            window.actions_by_id["mark_done"].trigger()  # the window does not wait: the save is queued
            qtbot.waitUntil(
                lambda: "not yet on the server" in _row_text(window, opened.rel_path), timeout=WAIT
            )
            assert "1 save(s) not yet on the server" in window.team_presence.pending_label.text()
        finally:
            team.server.start()
        qtbot.waitUntil(
            lambda: "not yet on the server" not in _row_text(window, opened.rel_path), timeout=WAIT
        )
        assert window.team_presence.pending_label.text() == ""
    finally:
        window.close()
    with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
        assert lena.get(opened.rel_path).status.value == "done"
        assert [v.author for v in lena.mask_history(lena.get(opened.rel_path))] == ["alice"]
