from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project, Status

REPO_ROOT = Path(__file__).resolve().parents[2]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my images ü"
    rng = np.random.default_rng(3)
    for name in ["b10.png", "b2.png", "sub/a.jpg"]:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)).save(path)
    (folder / "broken.jpg").write_text("not a jpeg")
    return folder


def test_info_prints_images_statuses_scheme_and_state(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    with Project.open(folder, scheme="cityscapes") as project:
        rec = project.get("b2.png")
        project.save_mask(rec, np.zeros((8, 12), np.uint8), status=Status.DONE)
        project.add_model_version("v1", project.models_dir / "v1.pt", "fcn_resnet50", {}, None)
    (folder / "b10.png").rename(folder / "renamed.png")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"SegStudio project: {folder}" in out
    assert f"state:   {folder / '.segstudio'}  (sidecar)" in out
    assert "images:  4  (1 unreadable)" in out
    assert "new 3 · predicted 0 · in progress 0 · done 1 · skipped 0" in out
    assert "scheme:  cityscapes (19 classes: road, sidewalk" in out
    assert "models:  v1" in out
    assert "1 renamed" in out


def test_info_json_and_project_dir(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    state = tmp_path / "state dir"
    Project.open(folder, state_dir=state).close()
    assert main(["info", str(folder), "--project-dir", str(state), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["state_dir"] == str(state) and summary["state_location"] == "project folder"
    assert summary["images"] == 4 and summary["status"]["new"] == 4 and summary["scheme"]["name"] == "voc"
    assert summary["split"]["train"] + summary["split"]["val"] == 4
    assert not (folder / ".segstudio").exists()


def test_info_on_a_folder_without_project_creates_nothing(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "images:  4" in out and "none yet" in out
    assert not (folder / ".segstudio").exists()


def test_info_while_the_project_is_open_elsewhere_shows_last_saved_state(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    with Project.open(folder) as project:
        project.set_status(project.get("b2.png"), Status.SKIPPED)
        assert main(["info", str(folder)]) == 0
        out = capsys.readouterr().out
    assert "skipped 1" in out and "in use by another SegStudio process" in out


def test_info_nonexistent_folder_is_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "segstudio", "info", str(tmp_path / "missing")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"segstudio info: error: image folder {tmp_path / 'missing'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_info_effort_per_model_version(tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    with Project.open(folder) as project:
        for name, version, seconds in (("b2.png", "v1", 90.0), ("b10.png", "v2", 30.0)):
            rec = project.get(name)
            project.save_prediction(rec, np.zeros((8, 12), np.uint8), np.zeros((8, 12), np.uint8), version)
            project.add_effort(project.get(name), seconds, {"click": 5 if version == "v1" else 2}, 0.25)
            project.set_status(project.get(name), Status.DONE)
    assert main(["info", str(folder), "--effort"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith(("v1", "v2"))]
    assert lines == [
        ["v1", "1", "90", "5", "25.0%", "click", "5"],
        ["v2", "1", "30", "2", "25.0%", "click", "2"],
    ]
    assert main(["info", str(folder), "--effort", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [g["median_seconds"] for g in data["effort"]] == [90.0, 30.0]
    assert main(["info", str(folder)]) == 0
    assert "Effort" not in capsys.readouterr().out
