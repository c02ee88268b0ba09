"""`segstudio export` and `segstudio import` from the command line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project, Status
from segstudio.core.schemes import voc_scheme


@pytest.fixture
def project_dir(tmp_path):
    from skimage import data

    images = tmp_path / "images"
    images.mkdir()
    for name, photo in (("a_cat.png", data.chelsea()), ("b_astronaut.jpg", data.astronaut())):
        Image.fromarray(photo).resize((96, 72)).save(images / name)
    with Project.open(images, scheme=voc_scheme()) as project:
        for rec in project.images():
            mask = np.zeros(rec.shape, dtype=np.uint8)
            cv2.circle(mask, (40, 30), 15, 15, -1)
            cv2.circle(mask, (40, 30), 5, 255, -1)
            project.save_mask(rec, mask, status=Status.DONE)
    return images


def test_export_voc_then_incremental_then_import(project_dir, tmp_path, capsys):
    out = tmp_path / "voc"
    assert main(["export", str(project_dir), "--format", "voc", "--out", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["exported"] == 2 and summary["written"] == 2
    assert main(["export", str(project_dir), "--format", "voc", "--out", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["unchanged"] == 2 and summary["written"] == 0
    assert main(["import", "voc", str(out), "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "15 person" in shown and not (tmp_path / "back").exists()
    assert main(["import", "voc", str(out), "--out", str(tmp_path / "back"), "--quiet"]) == 0
    with Project.open(tmp_path / "back") as project:
        assert project.counts()[Status.DONE] == 2


def test_user_errors_exit_2_with_a_message(project_dir, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert main(["export", str(project_dir), "--format", "coco", "--out", str(busy)]) == 2
    assert "not a SegStudio export" in capsys.readouterr().err
    assert main(["export", str(project_dir), "--format", "cityscapes", "--out", str(tmp_path / "cs")]) == 2
    err = capsys.readouterr().err
    assert "no Cityscapes label" in err and "aeroplane" in err
    assert main(["export", str(project_dir), "--format", "voc", "--out", str(tmp_path / "x"), "--check"]) == 0
    assert not (tmp_path / "x").exists()  # --check only checks
    assert main(["import", "labelme", str(tmp_path / "missing"), "--out", str(tmp_path / "p")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_import_labelme_in_place_and_flag_errors(labelme_example, tmp_path, capsys):
    import shutil

    folder = tmp_path / "annotated"
    shutil.copytree(labelme_example / "data_annotated", folder)
    folder.chmod(0o755)
    labels = str(labelme_example / "labels.txt")
    assert main(["import", "labelme", str(folder), "--labels", labels, "--quiet"]) == 2
    assert "either --out DIR" in capsys.readouterr().err
    assert main(["import", "labelme", str(folder), "--labels", labels, "--in-place", "--quiet"]) == 0
    assert "person" in capsys.readouterr().out
    with Project.open(folder) as project:
        assert project.counts()[Status.DONE] == 3


def test_export_works_while_the_app_holds_the_project(project_dir, tmp_path, capsys):
    """Export only reads: with the project open elsewhere it exports the last saved state."""
    out = tmp_path / "voc"
    with Project.open(project_dir) as held:  # stands in for the open annotation window
        assert main(["export", str(project_dir), "--format", "voc", "--out", str(out), "--quiet"]) == 0
        captured = capsys.readouterr()
        assert "open in SegStudio" in captured.err
        assert json.loads(captured.out.strip().splitlines()[-1])["exported"] == 2
        held.images()  # the holder is unaffected
    assert len(list((out / "VOCdevkit" / "VOC2012" / "SegmentationClass").glob("*.png"))) == 2


def test_new_formats_from_the_command_line(tmp_path, capsys, shared_testdata):
    """import masks (the CamVid sample) -> export camvid, coco, yolo -> import camvid and coco back."""
    sample = shared_testdata / "camvid_sample"
    project = tmp_path / "project"
    assert main(["import", "masks", str(sample), "--dry-run"]) == 0
    assert "10: bicyclist" in capsys.readouterr().out
    assert main(["import", "masks", str(sample), "--out", str(project)]) == 0
    capsys.readouterr()
    for fmt in ("camvid", "coco", "yolo"):
        assert (
            main(["export", str(project), "--format", fmt, "--out", str(tmp_path / fmt), "--include", "mask"])
            == 0
        )
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["exported"] == 24
    assert (
        main(
            [
                "import",
                "camvid",
                str(tmp_path / "camvid"),
                "--out",
                str(tmp_path / "back1"),
                "--allow-outside",
            ]
        )
        == 0
    )
    assert main(["import", "coco", str(tmp_path / "coco"), "--out", str(tmp_path / "back2")]) == 0
    assert "imported 24 images" in capsys.readouterr().out
