"""Export folder life cycle: atomic swap, incremental reuse, cancel, refusal of unrelated folders."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from segstudio.core.errors import CancelledError, ExportError
from segstudio.core.project import Status
from segstudio.export.common import ExportOptions
from segstudio.export.project_export import check_project, export_project
from segstudio.export.staging import MANIFEST_NAME, make_staging_dir, remove_dead_staging
from segstudio.export.voc import VOC_BASE
from tests.fakes import RecordingTask


def _files(root):
    return {p.relative_to(root).as_posix(): p.stat() for p in root.rglob("*") if p.is_file()}


def _siblings(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}"))


@pytest.mark.parametrize("fmt", ["voc", "cityscapes", "coco"])
def test_reexport_rewrites_only_changed_images(tmp_path, photo_project_factory, fmt):
    from segstudio.core.schemes import cityscapes_scheme

    proj = photo_project_factory(tmp_path, cityscapes_scheme(), [0, 11, 13, 10], scale=0.25)
    out = tmp_path / "out"
    with proj.open() as project:
        first = export_project(project, fmt, out)
        assert (first.written, first.reused) == (4, 0)
        before = _files(out)
        rec = project.get("coffee.jpg")
        changed = proj.masks["coffee.jpg"].copy()
        changed[5:15, 5:15] = 13
        project.save_mask(rec, changed, status=Status.DONE)
        task = RecordingTask()
        second = export_project(project, fmt, out, handle=task)
    assert (second.written, second.reused) == (1, 3)
    assert task.progress[-1] == (4, 4)
    after = _files(out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    for entry in manifest["items"]:
        for rel in entry["files"]:
            same_inode = after[rel].st_ino == before[rel].st_ino
            assert same_inode == (entry["source"] != "coffee.jpg"), rel
    assert _siblings(out) == []


def test_refuses_unrelated_non_empty_folder(voc_project, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    with voc_project.open() as project, pytest.raises(ExportError, match="not a SegStudio export"):
        export_project(project, "voc", out)
    assert (out / "holiday.jpg").read_bytes() == b"precious"
    assert sorted(os.listdir(out)) == ["holiday.jpg"]


def test_refuses_export_of_another_format_and_foreign_files(voc_project, tmp_path):
    out = tmp_path / "out"
    with voc_project.open() as project:
        export_project(project, "voc", out)
        with pytest.raises(ExportError, match="'voc' export"):
            export_project(project, "coco", out)
        (out / "notes.txt").write_text("mine")
        with pytest.raises(ExportError, match=r"notes\.txt"):
            export_project(project, "voc", out)
    assert (out / "notes.txt").read_text() == "mine"


def test_empty_existing_folder_is_fine(voc_project, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    with voc_project.open() as project:
        report = export_project(project, "voc", out)
    assert report.exported == 4 and (out / VOC_BASE / "class_names.txt").is_file()


def test_cancel_leaves_previous_export_untouched_and_no_temp_folder(voc_project, tmp_path):
    out = tmp_path / "out"
    with voc_project.open() as project:
        export_project(project, "voc", out)
        before = {k: v.st_ino for k, v in _files(out).items()}
        for rec in project.images():
            project.save_mask(rec, np.zeros(rec.shape, dtype=np.uint8), status=Status.DONE)
        check = check_project(project, "voc")  # cancel in the writing phase, not in the check
        task = RecordingTask(cancel_after=3)
        with pytest.raises(CancelledError):
            export_project(project, "voc", out, handle=task, check=check)
        assert task.progress[:3] == [(0, 4), (1, 4), (2, 4)]  # cancelled while writing images
    assert {k: v.st_ino for k, v in _files(out).items()} == before
    assert _siblings(out) == []
    first_new = tmp_path / "fresh"
    with voc_project.open() as project, pytest.raises(CancelledError):
        export_project(project, "voc", first_new, handle=RecordingTask(cancel_after=2))
    assert not first_new.exists() and _siblings(first_new) == []


def test_crash_leftovers_are_cleaned_and_swapped_out_export_restored(voc_project, tmp_path):
    out = tmp_path / "out"
    with voc_project.open() as project:
        export_project(project, "voc", out)
        # a crash between the two renames of a swap: only the old export exists, under its hidden name
        hidden = tmp_path / ".out.segstudio-old-deadbeef"
        os.replace(out, hidden)
        stale = tmp_path / ".out.segstudio-tmp-999999999-abcdef12"
        stale.mkdir()
        (stale / "half.png").write_bytes(b"x")
        report = export_project(project, "voc", out)
    assert report.reused == 4  # the restored export was recognised
    assert _siblings(out) == []


def test_progress_and_split_option(voc_project, tmp_path):
    task = RecordingTask()
    with voc_project.open() as project:
        report = export_project(project, "voc", tmp_path / "out", ExportOptions(split="val"), handle=task)
    sets = tmp_path / "out" / VOC_BASE / "ImageSets" / "Segmentation"
    assert sets.joinpath("train.txt").read_text() == ""
    assert len(sets.joinpath("val.txt").read_text().split()) == report.exported == 4
    assert (4, 4) in task.progress and task.statuses[-1].startswith("exported 4")


def test_refuses_output_inside_the_image_folder(voc_project):
    with voc_project.open() as project, pytest.raises(ExportError, match="inside the project's image folder"):
        export_project(project, "voc", voc_project.image_dir / "export")
    assert not (voc_project.image_dir / "export").exists()


def test_write_failure_is_a_user_error_and_leaves_nothing(voc_project, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"a file where the export's parent folder should be")  # fails even for root
    with voc_project.open() as project, pytest.raises(ExportError, match="check free space and permissions"):
        export_project(project, "voc", blocker / "out")
    assert blocker.read_bytes().startswith(b"a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "not_a_folder"]


def test_staging_helper_removes_only_folders_of_dead_writers(tmp_path):
    """The one cleanup rule export and import share: a staging sibling's pid says whether it is alive."""
    target = tmp_path / "out"
    mine = make_staging_dir(target, ".segstudio-x-")
    assert mine.name.startswith(f".out.segstudio-x-{os.getpid()}-") and mine.is_dir()
    dead = tmp_path / ".out.segstudio-x-999999999-deadbeef"
    other_tag = tmp_path / ".out.segstudio-y-999999999-deadbeef"
    for folder in (dead, other_tag):
        folder.mkdir()
    remove_dead_staging(target, ".segstudio-x-")
    assert mine.is_dir() and not dead.exists() and other_tag.is_dir()  # a live writer (us) is kept
    remove_dead_staging(target, ".segstudio-x-", include_own=True)
    assert not mine.exists() and other_tag.is_dir()
