"""Robust files: names that are not valid UTF-8, images found corrupt only when decoded, and
messages that say what is true (read-only state folder, a second process)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.errors import ImageReadError, ProjectError
from segstudio.core.project import Project, Status

from .conftest import real_photo, write_image

LATIN1 = os.fsdecode(b"caf\xe9 cr\xe8me.jpg")  # a Latin-1 name from an old archive: not UTF-8


def truncated_jpeg(path: Path) -> Path:
    """A JPEG whose header is fine (the scan lists it) but whose data stops halfway."""
    buffer = io.BytesIO()
    Image.fromarray(real_photo("coffee")).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 3])
    return path


def test_non_utf8_file_names_are_listed_and_usable(tmp_path, capsys):
    folder = tmp_path / "photos"
    write_image(folder / "plain.jpg", real_photo("chelsea"))
    write_image(folder / LATIN1, real_photo("astronaut"))
    write_image(folder / os.fsdecode(b"sub\xff") / "x.png", real_photo("coffee")[:50, :60])
    with Project.open(folder) as project:
        names = sorted(rec.rel_path for rec in project.images())
        assert names == sorted([LATIN1, "plain.jpg", os.fsdecode(b"sub\xff") + "/x.png"])
        rec = project.get(LATIN1)
        assert rec is not None and rec.error is None
        assert project.load_image(rec).shape == real_photo("astronaut").shape
        project.save_mask(rec, np.full(rec.shape, 3, np.uint8), status=Status.DONE)
    with Project.open(folder) as project:  # survives a reopen (stored and read back unchanged)
        rec = project.get(LATIN1)
        assert rec.status == Status.DONE and (project.load_mask(rec) == 3).all()
    os.rename(folder / LATIN1, folder / os.fsdecode(b"moved \xe9.jpg"))
    with Project.open(folder) as project:  # a rename is followed, the mask goes with it
        moved = project.get(os.fsdecode(b"moved \xe9.jpg"))
        assert moved is not None and moved.status == Status.DONE
    assert main(["info", str(folder)]) == 0
    assert main(["export", str(folder), "--format", "voc", "--out", str(tmp_path / "voc")]) == 0
    capsys.readouterr()


def test_truncated_image_is_recorded_as_unreadable_when_decoded(tmp_path, capsys):
    folder = tmp_path / "photos"
    write_image(folder / "good.jpg", real_photo("chelsea"))
    truncated_jpeg(folder / "cut.jpg")
    with Project.open(folder) as project:
        rec = project.get("cut.jpg")
        assert rec.error is None  # the header alone looks fine
        with pytest.raises(ImageReadError, match="truncated"):
            project.load_image(rec)
        rec = project.get("cut.jpg")
        assert rec.error and "truncated" in rec.error
        assert project.summary()["unreadable"] == 1
    with Project.open(folder) as project:  # recorded, not just remembered by this process
        assert "truncated" in (project.get("cut.jpg").error or "")
    assert main(["info", str(folder)]) == 0
    assert "1 unreadable" in capsys.readouterr().out


def test_a_repaired_image_becomes_readable_again(tmp_path):
    folder = tmp_path / "photos"
    truncated_jpeg(folder / "cut.jpg")
    with Project.open(folder) as project, pytest.raises(ImageReadError):
        project.load_image(project.get("cut.jpg"))
    write_image(folder / "cut.jpg", real_photo("coffee"))
    with Project.open(folder) as project:
        rec = project.get("cut.jpg")
        assert rec.error is None and project.load_image(rec).shape == real_photo("coffee").shape


def test_read_only_view_does_not_record(tmp_path):
    folder = tmp_path / "photos"
    truncated_jpeg(folder / "cut.jpg")
    Project.open(folder).close()
    with Project.open_read_only(folder) as view, pytest.raises(ImageReadError):
        view.load_image(view.get("cut.jpg"))


def test_voc_import_of_a_truncated_jpeg_is_not_done(tmp_path):
    from segstudio.export.import_common import run_import
    from segstudio.export.voc_import import preview_voc

    root = tmp_path / "VOC2012"
    truncated_jpeg(root / "JPEGImages" / "cut.jpg")
    write_image(root / "JPEGImages" / "good.jpg", real_photo("chelsea"))
    (root / "SegmentationClass").mkdir()
    for name, shape in (("cut", real_photo("coffee").shape[:2]), ("good", real_photo("chelsea").shape[:2])):
        Image.fromarray(np.zeros(shape, np.uint8)).save(root / "SegmentationClass" / f"{name}.png")
    plan = preview_voc(root)
    target = run_import(plan, tmp_path / "project")
    assert any("cut.jpg" in w and "unreadable" in w for w in plan.warnings)
    with Project.open(target) as project:
        cut = project.get("cut.jpg")
        assert cut.status != Status.DONE and cut.error and "truncated" in cut.error
        assert project.get("good.jpg").status == Status.DONE


def test_existing_read_only_state_folder_is_named_as_such(tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    write_image(folder / "a.jpg", real_photo("chelsea"))
    Project.open(folder).close()
    state = folder / ".segstudio"
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **kw: False if Path(p) == state and mode == os.W_OK else real_access(p, mode, **kw),
    )
    with pytest.raises(ProjectError) as info:
        Project.open(folder)
    message = str(info.value)
    assert str(state) in message and "read-only" in message and "image folder seems read-only" not in message


def test_second_process_is_named_a_process_not_a_window(tmp_path):
    from segstudio.core.project import LOCKED_MESSAGE

    assert "in use by another SegStudio process" in LOCKED_MESSAGE and "window" not in LOCKED_MESSAGE


def test_a_project_saved_with_a_newline_in_a_class_name_still_opens(tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "a.jpg", real_photo("chelsea"))
    with Project.open(folder, scheme="voc") as project:
        rec = project.images()[0]
        project.save_mask(rec, np.full(rec.shape, 2, np.uint8), status=Status.DONE)
        stored = project.scheme.to_dict()
        stored["classes"][2]["name"] = "bi\ncycle\x00"  # what an older SegStudio accepted
        project._store.set_meta("scheme", stored)
    with Project.open(folder) as project:
        assert project.scheme.names[2] == "bi cycle"
        assert (project.load_mask(project.images()[0]) == 2).all()
