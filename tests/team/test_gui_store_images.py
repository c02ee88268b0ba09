"""The window on a team project whose images live only in the server: a member opens it on an empty
folder with File -> Open team project..., sees the first image and the thumbnails (fetched off the GUI
thread), and sees an image the lead adds meanwhile."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.core import images as image_io
from segstudio.core.project import Project
from segstudio.team.transfer import create_team_project

WAIT = 30_000


@pytest.fixture
def stored(team_db, image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    Project.open(image_folder).close()
    create_team_project(image_folder, team_db.url("lena"), store_images=True)
    return team_db


def test_open_a_team_project_from_an_empty_folder_shows_the_first_image(
    qtbot, stored, image_folder, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from segstudio.cli import main
    from segstudio.gui import team_view
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    empty = tmp_path / "laptop"
    empty.mkdir()
    monkeypatch.setattr(team_view, "POLL_MS", 300)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (stored.url("alice"), True))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(empty))
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        window.open_team_action.trigger()
        qtbot.waitUntil(
            lambda: window.session is not None and window.session.document is not None, timeout=WAIT
        )
        rec = window.session.record
        assert window.session.image is not None
        np.testing.assert_array_equal(window.session.image, image_io.load_image(image_folder / rec.rel_path))
        assert not any(empty.iterdir())  # the member's folder stays empty: the images are in the cache
        model = window.browser.model
        paths = [r.rel_path for r in model.records()]
        assert len(paths) == 4
        qtbot.waitUntil(lambda: all(model.has_thumbnail(p) for p in paths), timeout=WAIT)

        Image.fromarray(np.full((20, 30, 3), 99, np.uint8)).save(image_folder / "e_new.png")
        assert main(["team", "add", str(image_folder), "--db", stored.url("lena")]) == 0
        qtbot.waitUntil(lambda: model.row_of("e_new.png") is not None, timeout=WAIT)
        qtbot.waitUntil(lambda: model.has_thumbnail("e_new.png"), timeout=WAIT)
    finally:
        window.close()
