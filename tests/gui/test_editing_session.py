"""EditorSession keeps disk work off the GUI thread: mark-done writes in the background, neighbours'
labels are decoded ahead and never served stale, a failed write says so and shows the stored state."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ProjectError
from segstudio.core.project import Project, Status
from segstudio.gui.editing_session import EditorSession

WAIT = 5000


@pytest.fixture
def project(tmp_path: Path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / name)
    with Project.open(folder) as proj:
        yield proj


@pytest.fixture
def session(project, qtbot):
    session = EditorSession(project, autosave_ms=10_000)
    session.neighbours = lambda rel_path: [p for p in ("a.png", "b.png", "c.png") if p != rel_path]
    yield session
    session.close()


def test_mark_done_returns_before_the_write_and_the_writer_confirms(
    session, project, qtbot, monkeypatch
) -> None:
    assert session.open_image("a.png")
    release = threading.Event()
    writer_threads: list[str] = []
    original = project.save_mask

    def slow_save(rec, mask, status=Status.IN_PROGRESS):
        writer_threads.append(threading.current_thread().name)
        release.wait(5)
        return original(rec, mask, status)

    monkeypatch.setattr(project, "save_mask", slow_save)
    shown = session.set_status(Status.DONE)
    # Returned at once: the record shows done, the database does not yet.
    assert shown is not None and shown.status is Status.DONE
    assert project.get("a.png").status is Status.NEW
    release.set()
    qtbot.waitUntil(lambda: project.get("a.png").status is Status.DONE, timeout=WAIT)
    assert project.has_mask(project.get("a.png"))
    assert writer_threads and writer_threads[0] != threading.main_thread().name


def test_prefetched_labels_are_used_once_and_never_stale(session, project, qtbot) -> None:
    assert session.open_image("a.png")  # prefetches b and c (image, mask, prediction)
    qtbot.waitUntil(
        lambda: "b.png" in session.cache._labels and "c.png" in session.cache._labels, timeout=WAIT
    )
    b = project.get("b.png")
    # b's mask is written after it was prefetched (here: through the writer, as the session does).
    written = np.full(b.shape, 4, np.uint8)
    session._submit("b.png", lambda: project.save_mask(b, written))
    session.flush()
    assert session.open_image("b.png")
    np.testing.assert_array_equal(session.document.labels, written)


def test_open_waits_only_for_writes_of_the_image_it_opens(session, project, qtbot, monkeypatch) -> None:
    assert session.open_image("a.png")
    release = threading.Event()
    original = project.save_mask

    def slow_save(rec, mask, status=Status.IN_PROGRESS):
        release.wait(5)
        return original(rec, mask, status)

    monkeypatch.setattr(project, "save_mask", slow_save)
    session.set_status(Status.DONE)
    assert session.open_image("b.png")  # does not wait for a's write (it would block 5 s)
    assert project.get("a.png").status is Status.NEW
    release.set()
    assert session.open_image("a.png")  # a's own write is waited for, so its saved mask is shown
    assert project.get("a.png").status is Status.DONE


def test_failed_write_reports_and_shows_the_stored_state(session, project, qtbot, monkeypatch) -> None:
    assert session.open_image("a.png")
    errors: list[str] = []
    session.error.connect(errors.append)

    def refuse(rec, status):
        raise ProjectError("the project was opened read-only; open it normally to change it")

    monkeypatch.setattr(project, "set_status", refuse)
    assert session.set_status(Status.SKIPPED).status is Status.SKIPPED  # optimistic
    qtbot.waitUntil(lambda: bool(errors), timeout=WAIT)
    assert "saving a.png failed" in errors[0] and "read-only" in errors[0]
    qtbot.waitUntil(lambda: session.record.status is Status.NEW, timeout=WAIT)
