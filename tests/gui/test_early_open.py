"""A folder given at start-up is opened while the window is built, and the window adopts that open."""

from __future__ import annotations

from pathlib import Path

from segstudio.core.project import Project
from segstudio.gui.opener import EarlyOpen, ProjectOpener

WAIT = 20_000


def test_window_adopts_the_early_open_instead_of_opening_again(qtbot, demo_photos: Path, monkeypatch):
    early = EarlyOpen(str(demo_photos), None)
    early.future.result(timeout=20)  # done before the window asks: the adopted result is used as is
    calls = []
    monkeypatch.setattr(Project, "open", lambda *a, **k: calls.append(a))  # a second open would show here
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    window.open_folder(demo_photos, early=early)
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=WAIT)
    assert calls == []
    assert window.project is early.future.result()
    assert window.windowTitle().endswith(window.session.record.rel_path)
    window.close()


def test_an_early_open_of_another_folder_is_closed_and_the_asked_one_opened(
    qtbot, demo_photos: Path, tmp_path
):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.jpg").write_bytes(next(demo_photos.glob("*.jpg")).read_bytes())
    early = EarlyOpen(str(other), None)
    opener = ProjectOpener()
    with qtbot.waitSignal(opener.opened, timeout=WAIT) as got:
        opener.start(str(demo_photos), None, early)
    project = got.args[0]
    assert project.image_dir == demo_photos.resolve()
    qtbot.waitUntil(lambda: early.future.done(), timeout=WAIT)
    if early.future.exception() is None:  # it finished before the cancel: closed, so its lock is free again
        qtbot.waitUntil(lambda: _reopens(other), timeout=WAIT)
    project.close()


def test_an_early_open_that_fails_reports_like_any_open(qtbot, tmp_path):
    missing = tmp_path / "gone"
    early = EarlyOpen(str(missing), None)
    opener = ProjectOpener()
    with qtbot.waitSignal(opener.failed, timeout=WAIT) as got:
        opener.start(str(missing), None, early)
    assert "gone" in got.args[0]


def test_cancelling_the_adopting_task_cancels_the_early_open(qtbot, demo_photos: Path):
    early = EarlyOpen(str(demo_photos), None)
    opener = ProjectOpener()
    opener.start(str(demo_photos), None, early)
    opener.cancel()
    qtbot.waitUntil(lambda: early.handle.is_cancelled() or early.future.done(), timeout=WAIT)
    qtbot.waitUntil(early.future.done, timeout=WAIT)
    if early.future.exception() is None:  # finished before the cancel reached it: the runner discards it
        qtbot.waitUntil(lambda: _reopens(demo_photos), timeout=WAIT)


def _reopens(folder: Path) -> bool:
    try:
        project = Project.open(folder)
    except Exception:
        return False
    project.close()
    return True
