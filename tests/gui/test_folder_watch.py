"""The folder is live: files added, removed or renamed on disk while the project is open follow in the window."""

from __future__ import annotations

import os
import shutil

from segstudio.core.project import Status

WAIT = 20_000


def _paths(window) -> list[str]:
    return [r.rel_path for r in window.browser.model.records()]


def _watching(window, qtbot) -> None:
    """The watcher lists its folders in the background after the project opens."""
    qtbot.waitUntil(lambda: bool(window.folder_watch._watcher.directories()), timeout=WAIT)


def test_watcher_picks_up_an_added_file(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    first = sorted(p.name for p in demo_photos.glob("*.jpg"))[0]
    _watching(window, qtbot)
    (demo_photos / "later").mkdir()
    shutil.copy2(demo_photos / first, demo_photos / "later" / "copy.jpg")  # same pixels, another name
    qtbot.waitUntil(lambda: "later/copy.jpg" in _paths(window), timeout=WAIT)
    assert window.browser.model.record("later/copy.jpg").status == Status.NEW
    assert window.session.record.rel_path == first  # the open image stays open
    # The new sub-folder is watched too.
    shutil.copy2(demo_photos / first, demo_photos / "later" / "copy2.jpg")
    qtbot.waitUntil(lambda: "later/copy2.jpg" in _paths(window), timeout=WAIT)


def test_a_deleted_done_image_leaves_the_list_and_a_renamed_one_keeps_its_work(
    shown_window, demo_photos, qtbot
):
    window = shown_window(demo_photos)
    names = sorted(p.name for p in demo_photos.glob("*.jpg"))
    current = window.session.record.rel_path
    window.mark(Status.DONE)  # marks the open image done and moves on
    qtbot.waitUntil(lambda: window.project.get(current).status == Status.DONE, timeout=WAIT)
    qtbot.waitUntil(
        lambda: window.browser.counter.text().startswith("1 /"), timeout=WAIT
    )  # queued after the write
    _watching(window, qtbot)
    (demo_photos / current).unlink()
    qtbot.waitUntil(lambda: current not in _paths(window), timeout=WAIT)
    qtbot.waitUntil(lambda: window.browser.counter.text().startswith("0 / 3 done"), timeout=WAIT)
    # Rename the image that is open now: it stays open under its new name, nothing lost.
    open_now = window.session.record.rel_path
    assert open_now in names and open_now != current
    (demo_photos / open_now).rename(demo_photos / f"renamed_{open_now}")
    qtbot.waitUntil(lambda: f"renamed_{open_now}" in _paths(window), timeout=WAIT)
    assert open_now not in _paths(window)
    assert (
        window.session.record.rel_path == f"renamed_{open_now}"
        and window.browser.current == f"renamed_{open_now}"
    )
    # The open image is deleted: the window moves on, no box, no save into a removed record.
    (demo_photos / f"renamed_{open_now}").unlink()
    qtbot.waitUntil(
        lambda: window.session.record is not None and window.session.record.rel_path != f"renamed_{open_now}",
        timeout=WAIT,
    )
    assert len(_paths(window)) == 2 and getattr(window, "last_error", None) is None


def test_rescan_action_finds_a_file_without_the_watcher(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    _watching(window, qtbot)
    window.folder_watch._watcher.removePaths(
        window.folder_watch._watcher.directories()
    )  # e.g. a network share
    first = sorted(p.name for p in demo_photos.glob("*.jpg"))[0]
    shutil.copy2(demo_photos / first, demo_photos / "zz_new.jpg")
    window.actions_by_id["rescan"].trigger()
    qtbot.waitUntil(lambda: "zz_new.jpg" in _paths(window), timeout=WAIT)


def test_an_unreadable_file_that_appears_is_listed_as_a_problem(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    _watching(window, qtbot)
    (demo_photos / "notes.jpg").write_bytes(b"not an image at all")
    qtbot.waitUntil(lambda: "notes.jpg" in window.problems.problems(), timeout=WAIT)
    assert "unreadable" in window.problems.problems()["notes.jpg"]
    assert window.browser.model.record("notes.jpg").error
    (demo_photos / "notes.jpg").unlink()
    qtbot.waitUntil(lambda: "notes.jpg" not in window.problems.problems(), timeout=WAIT)


def test_swapped_names_never_show_cached_pixels_of_the_other_file(shown_window, demo_photos, qtbot):
    from PIL import Image

    window = shown_window(demo_photos)
    first, second = sorted(p.name for p in demo_photos.glob("*.jpg"))[:2]
    assert window.session.record.rel_path == first  # decoded and cached under its name
    size_of = {name: Image.open(demo_photos / name).size for name in (first, second)}
    assert size_of[first] != size_of[second]
    _watching(window, qtbot)
    (demo_photos / first).rename(demo_photos / "swap.tmp")
    (demo_photos / second).rename(demo_photos / first)
    (demo_photos / "swap.tmp").rename(demo_photos / second)
    qtbot.waitUntil(lambda: window.session.record.rel_path == second, timeout=WAIT)  # the open image followed
    window.open_image(first)  # now holds the other photo
    qtbot.waitUntil(
        lambda: window.session.image is not None and window.session.record.rel_path == first, timeout=WAIT
    )
    width, height = size_of[second]
    assert window.session.image.shape[:2] == (height, width)


def test_new_pixels_under_the_open_name_are_shown(shown_window, demo_photos, qtbot):
    from PIL import Image

    window = shown_window(demo_photos)
    current = window.session.record.rel_path
    before = window.session.image.copy()
    _watching(window, qtbot)
    # Same size, other pixels, saved the way editors save (a new file renamed over the old one).
    Image.fromarray(255 - before).save(demo_photos / "edit.tmp.jpg", quality=95)
    os.replace(demo_photos / "edit.tmp.jpg", demo_photos / current)
    qtbot.waitUntil(
        lambda: (
            window.session.image is not None
            and abs(int(window.session.image.mean()) - int(255 - before.mean())) <= 2
        ),
        timeout=WAIT,
    )
    assert window.session.record.rel_path == current and window.session.document is not None
