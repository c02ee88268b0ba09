"""A cancel is the same non-error outcome for every command: exit 130, "cancelled", no "error"
(cli.main handles CancelledError in one place); `train --json` sends no error event for it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segstudio import cli
from segstudio.core.errors import CancelledError
from segstudio.core.project import Project


def _cancel(*args, **kwargs):
    raise CancelledError("cancelled by the user")


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(photos / name)
    Project.open(photos).close()
    return photos


def _open_cancelled(monkeypatch):
    """Cancelled while the project is opened (a first open hashes every image, with a cancel check)."""
    for name in ("open", "open_for_reading", "open_read_only"):
        monkeypatch.setattr(Project, name, classmethod(lambda cls, *a, **k: _cancel()))


def _labelme_folder(tmp_path):
    source = tmp_path / "labelme"
    source.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(source / "x.png")
    shape = {"label": "person", "points": [[2, 2], [20, 2], [20, 15]], "shape_type": "polygon"}
    record = {"imagePath": "x.png", "imageHeight": 20, "imageWidth": 30, "shapes": [shape], "imageData": None}
    (source / "x.json").write_text(json.dumps(record))
    return source


CASES = {
    "info": (lambda f, t: ["info", str(f)], _open_cancelled),
    "predict": (lambda f, t: ["predict", str(f), "--weights", "none"], _open_cancelled),
    "export": (lambda f, t: ["export", str(f), "--format", "voc", "--out", str(t / "out")], _open_cancelled),
    "eval": (lambda f, t: ["eval", str(f)], _open_cancelled),
    "crf tune": (lambda f, t: ["crf", "tune", str(f)], _open_cancelled),
}


@pytest.mark.parametrize("command", sorted(CASES))
def test_a_cancel_exits_130_without_an_error(command, folder, tmp_path, monkeypatch, capsys):
    argv, cancel = CASES[command]
    cancel(monkeypatch)
    assert cli.main(argv(folder, tmp_path)) == cli.EXIT_CANCELLED
    err = capsys.readouterr().err
    assert "cancelled" in err and "error" not in err.lower()


def test_import_cancelled_while_copying(tmp_path, monkeypatch, capsys):
    from segstudio.export import import_common

    monkeypatch.setattr(import_common, "run_import", _cancel)
    argv = ["import", "labelme", str(_labelme_folder(tmp_path)), "--out", str(tmp_path / "project")]
    assert cli.main(argv) == cli.EXIT_CANCELLED
    err = capsys.readouterr().err
    assert "cancelled" in err and "error" not in err.lower()


def test_train_cancelled_is_no_error_event(folder, monkeypatch, capsys):
    from segstudio.ml import manifest, train

    monkeypatch.setattr(manifest, "manifest_from_project", _cancel)  # cancelled while preparing the data
    monkeypatch.setattr(train, "train", _cancel)
    assert cli.main(["train", str(folder), "--json"]) == cli.EXIT_CANCELLED
    out, err = capsys.readouterr()
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert "error" not in events
    assert "cancelled" in err and "error" not in err.lower()
