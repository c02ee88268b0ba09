"""The window on a team project whose images live only in the server: a member opens it on an empty
folder with File -> Open team project..., sees the first image and the thumbnails (fetched off the GUI
thread), and sees an image the lead adds meanwhile."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.core import images as image_io
from segstudio.core.project import Project, Status
from segstudio.team.transfer import create_team_project
from tests.team.conftest import open_team_window

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

    from segstudio.cli import main

    empty = tmp_path / "laptop"
    empty.mkdir()
    window = open_team_window(qtbot, monkeypatch, stored.url("alice"), empty, poll_ms=300)
    try:
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


# ---------------------------------------------------------------- an image far from the prefetched ones

TARGET = "c_astronaut.png"  # never prefetched here (no queue): fetched when opened


def _open_as_alice(qtbot, stored, tmp_path, monkeypatch):
    """The window of alice on an empty folder, its first image shown."""
    empty = tmp_path / "laptop"
    empty.mkdir()
    window = open_team_window(qtbot, monkeypatch, stored.url("alice"), empty)
    assert window.session.record.rel_path != TARGET
    return window


def _click(window, rel_path: str) -> float:
    """Click the image in the browser as a user does; the seconds the click kept the GUI thread."""
    import time

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    view, model = window.browser.view, window.browser.model
    index = model.index(model.row_of(rel_path))
    view.scrollTo(index)
    start = time.perf_counter()
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.visualRect(index).center())  # fmt: skip
    return time.perf_counter() - start


def _message(window) -> str:
    return window.canvas.message.text()


def _shown(window, rel_path: str, image_folder) -> bool:
    session = window.session
    return (
        session.record.rel_path == rel_path
        and session.document is not None
        and not session.fetching_image
        and np.array_equal(session.image, image_io.load_image(image_folder / rel_path))
    )


def test_an_image_not_cached_is_fetched_off_the_gui_thread_and_a_late_fetch_for_an_image_left_is_dropped(
    qtbot, stored, image_folder, tmp_path, monkeypatch
):
    import threading

    from PySide6.QtCore import QTimer

    from segstudio.team import image_store

    real = image_store.ServerImages._download
    gate, waiting, threads = threading.Event(), threading.Event(), []

    def slow(self, rec):  # the server is slow for this one image, until the test opens the gate
        if rec.rel_path == TARGET:
            threads.append(threading.current_thread())
            waiting.set()
            gate.wait(20)
        return real(self, rec)

    monkeypatch.setattr(image_store.ServerImages, "_download", slow)
    window = _open_as_alice(qtbot, stored, tmp_path, monkeypatch)
    first = window.session.record.rel_path
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    try:
        assert _click(window, TARGET) < 5.0  # a fetch on the GUI thread would hold it until the gate opens
        session = window.session
        assert session.fetching_image and session.record.rel_path == TARGET and session.document is None
        assert f"{TARGET}\n\nfetching from the server…" == _message(window)
        assert "fetching from the server" in window.windowTitle()
        qtbot.waitUntil(waiting.is_set, timeout=WAIT)  # the download is under way, held by the slow server
        before = len(ticks)
        qtbot.wait(500)
        assert len(ticks) - before >= 10 and not gate.is_set()  # the GUI thread kept running meanwhile
        assert session.fetching_image and not session.project.server_images.is_cached(session.record)
        window.actions_by_id["mark_done"].trigger()  # nothing seen yet: nothing marked
        assert "still being fetched" in window.statusBar().currentMessage()
        assert session.record.status != Status.DONE and session.project.get(TARGET).status != Status.DONE

        assert _click(window, first) < 5.0  # the user moves on while the fetch is still waiting
        assert _shown(window, first, image_folder)
        gate.set()
        target = session.project.get(TARGET)
        qtbot.waitUntil(lambda: session.project.server_images.is_cached(target), timeout=WAIT)
        qtbot.waitUntil(
            lambda: (
                not any(t.name == "segstudio-fetch-image" and t.is_alive() for t in threading.enumerate())
            ),
            timeout=WAIT,
        )  # the late result was reported...
        qtbot.wait(300)
        assert _shown(window, first, image_folder)  # ...and dropped: the window still shows the image chosen
        assert window.windowTitle() == f"SegStudio — {first}" and _message(window) == ""
        assert threads and all(t is not threading.main_thread() for t in threads)

        _click(window, TARGET)  # now in the cache: shown at once
        qtbot.waitUntil(lambda: _shown(window, TARGET, image_folder), timeout=WAIT)
    finally:
        timer.stop()
        gate.set()
        window.close()


def test_a_failed_fetch_says_why_and_the_window_keeps_working_and_retries(
    qtbot, stored, image_folder, tmp_path, monkeypatch
):
    from segstudio.team import image_store
    from segstudio.team.errors import TeamConnectionError

    real = image_store.ServerImages._download
    broken = [True]

    def cut(self, rec):
        if rec.rel_path == TARGET and broken[0]:
            raise TeamConnectionError(
                f"lost the connection to the team server while trying to fetch {TARGET}"
            )
        return real(self, rec)

    monkeypatch.setattr(image_store.ServerImages, "_download", cut)
    window = _open_as_alice(qtbot, stored, tmp_path, monkeypatch)
    first = window.session.record.rel_path
    try:
        _click(window, TARGET)
        qtbot.waitUntil(lambda: "could not be fetched" in _message(window), timeout=WAIT)
        assert "lost the connection to the team server" in _message(window)
        assert "Open it again to retry" in _message(window)
        assert f"{TARGET} could not be fetched" in window.statusBar().currentMessage()
        session = window.session
        assert not session.fetching_image and session.document is None
        assert not any(
            p == TARGET for p in window.browser.model.problems
        )  # the image is fine; the link was not
        _click(window, first)
        qtbot.waitUntil(lambda: _shown(window, first, image_folder), timeout=WAIT)
        broken[0] = False  # the link is back: opening it again fetches it
        _click(window, TARGET)
        qtbot.waitUntil(lambda: _shown(window, TARGET, image_folder), timeout=WAIT)
    finally:
        window.close()
