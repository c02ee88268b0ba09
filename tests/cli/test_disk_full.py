"""A full disk (ENOSPC, simulated) during predict / import / export: exit 2, the destination named,
no traceback, and nothing the user saved before is lost."""

from __future__ import annotations

import errno
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project, Status
from segstudio.export.engine import DatasetFormat


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def folder(tmp_path):
    from skimage import data

    images = tmp_path / "images"
    images.mkdir()
    for name, photo in (("a_cat.png", data.chelsea()), ("b_coffee.png", data.coffee())):
        Image.fromarray(photo).resize((96, 72)).save(images / name)
    with Project.open(images) as project:
        for rec in project.images():
            project.save_mask(rec, np.full(rec.shape, 1, np.uint8), status=Status.DONE)
    return images


def _assert_clear(capsys, code: int, destination: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "is full" in err and destination in err
    return err


@pytest.mark.usefixtures("one_torch_thread", "offline_downloads")
def test_predict_on_a_full_disk(folder, capsys, monkeypatch):
    import segstudio.core.masks as masks

    with Project.open(folder) as project:  # work in progress: predicted again, masks must survive
        for rec in project.images():
            project.set_status(rec, Status.IN_PROGRESS)
    real = masks.atomic_write_bytes
    calls = {"n": 0}

    def fill_up(path, data):
        calls["n"] += 1
        if calls["n"] > 2:  # the first image's prediction files fit, then the disk is full
            _no_space()
        real(path, data)

    monkeypatch.setattr(masks, "atomic_write_bytes", fill_up)
    code = main(
        [
            "predict",
            str(folder),
            "--device",
            "cpu",
            "--weights",
            "none",
            "--model",
            "lraspp_mobilenet_v3_large",
            "--overwrite",
        ]
    )
    _assert_clear(capsys, code, str(folder / ".segstudio"))
    monkeypatch.undo()
    with Project.open(folder) as project:
        for rec in project.images():  # the user's masks are intact
            assert rec.status == Status.IN_PROGRESS and (project.load_mask(rec) == 1).all()
        assert sum(project.load_prediction(rec) is not None for rec in project.images()) == 1


def test_export_on_a_full_disk_keeps_the_previous_export(folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "voc"
    assert main(["export", str(folder), "--format", "voc", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with Project.open(folder) as project:  # a change, so the next export must write again
        rec = project.images()[0]
        project.save_mask(rec, np.full(rec.shape, 2, np.uint8), status=Status.DONE)
    capsys.readouterr()
    monkeypatch.setattr(DatasetFormat, "write_file", staticmethod(_no_space))
    code = main(["export", str(folder), "--format", "voc", "--out", str(out)])
    _assert_clear(capsys, code, str(out))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "voc"]  # no staging folder left


def test_import_on_a_full_disk_publishes_nothing(tmp_path, capsys, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(source / "a.png")
    shape = {"label": "x", "shape_type": "rectangle", "points": [[1, 1], [5, 5]]}
    document = {"shapes": [shape], "imagePath": "a.png", "imageHeight": 8, "imageWidth": 8}
    (source / "a.json").write_text(json.dumps(document))
    monkeypatch.setattr(shutil, "copyfile", _no_space)
    code = main(["import", "labelme", str(source), "--out", str(tmp_path / "proj"), "--quiet"])
    _assert_clear(capsys, code, str(tmp_path / "proj"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
