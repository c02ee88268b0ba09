"""`segstudio crf`: show, switch, set, reset, and tune (with a clear error when nothing can be tuned)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project
from segstudio.ml.crf import CRFParams, load_params
from segstudio.ml.crf_project import project_crf


def _folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    return folder


def test_show_switch_set_reset(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["crf", str(folder), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (
        shown["on"] is False and shown["settings"]["bilateral_srgb"] == 3.0 and shown["last_tuning"] is None
    )
    assert main(["crf", str(folder), "--on", "--set", "bilateral_sxy=45", "--set", "iterations=8"]) == 0
    with Project.open(folder) as project:
        assert project_crf(project) == CRFParams(bilateral_sxy=45, iterations=8)
    assert main(["crf", str(folder), "--reset"]) == 0
    with Project.open(folder) as project:
        assert project_crf(project) == CRFParams()
    assert main(["crf", str(folder), "--off"]) == 0
    with Project.open(folder) as project:
        assert project_crf(project) is None and load_params(project).enabled is False


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["crf", str(folder), "--set", "sigma=3"]) == 2
    assert "unknown CRF setting" in capsys.readouterr().err
    assert main(["crf", str(folder), "--set", "iterations"]) == 2
    assert main(["crf", "tune", str(folder)]) == 2
    assert "at least 2 done images" in capsys.readouterr().err
