"""`segstudio train --click-model`: the new version carries a click model; rollback restores both."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from segstudio.cli import main
from segstudio.core.project import Project
from segstudio.ml.click_model import load_click_model
from segstudio.ml.click_model_files import CLICK_MODEL_NAME, click_model_path

from .test_train import ARCH, FAST, project_folder  # noqa: F401  (the 12-done-image project)


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_train_click_model_is_stored_with_the_version_and_follows_rollback(project_folder, capsys):  # noqa: F811
    base = ["train", str(project_folder), "--base", "scratch", "--arch", ARCH, *FAST, "--epochs", "1"]
    assert main([*base, "--click-model", "--click-model-steps", "3", "--json"]) == 0
    events = _events(capsys.readouterr().out)
    saved = [e for e in events if e["event"] == "click_model" and "path" in e]
    assert saved and saved[-1]["steps"] == 3 and saved[-1]["reason"] == "completed"
    assert events[-1]["event"] == "done"
    with Project.open(project_folder) as project:
        v1 = project.model_versions()[0]
        stored = click_model_path(v1.checkpoint_path)
        assert (
            stored
            == v1.checkpoint_path.parent / CLICK_MODEL_NAME
            == project.models_dir / "v1" / CLICK_MODEL_NAME
        )
        _, info = load_click_model(stored)
        assert info["steps"] == 3 and info["train_images"] == events[0]["train_images"]
    # a version trained without the flag carries none; making v1 active again brings its click model back
    assert main([*base, "--activate", "yes", "--json"]) == 0
    capsys.readouterr()
    with Project.open(project_folder) as project:
        assert project.active_model_version().version == "v2"
        assert click_model_path(project.active_model_version().checkpoint_path) is None
        project.set_active_model_version("v1")
        assert click_model_path(project.active_model_version().checkpoint_path) == stored


def test_bad_click_model_steps_exit_2(project_folder, capsys):  # noqa: F811
    assert main(["train", str(project_folder), "--click-model", "--click-model-steps", "0"]) == 2
    assert "--click-model-steps must be at least 1" in capsys.readouterr().err
