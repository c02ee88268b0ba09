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
