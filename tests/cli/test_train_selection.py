"""`segstudio train`'s version rules: `--activate auto` compares with the starting model whatever the
base; a run cancelled before it beat its start adds no version; the summary states the uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segstudio.commands.train import _register, _summary
from segstudio.core.project import Project
from segstudio.core.schemes import LabelScheme
from segstudio.ml.synthetic import shapes_scheme_dict
from segstudio.ml.train_config import TrainResult


@pytest.fixture
def project(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict())) as project:
        yield project


def _result(
    tmp_path: Path, reason: str, best: float, baseline: float | None, version: str = "v1"
) -> TrainResult:
    ckpt = tmp_path / f"{version}.pt"
    ckpt.write_bytes(b"checkpoint")
    return TrainResult(
        reason=reason,
        checkpoint=ckpt,
        version=version,
        parent=None,
        arch="lraspp_mobilenet_v3_large",
        metrics={"miou": best},
        baseline_miou=baseline,
        best_miou=best,
        gain_estimate={"value": best - baseline, "plus_minus": 0.031, "n": 8} if baseline else None,
    )


def test_auto_does_not_activate_a_model_worse_than_a_file_base_without_an_active_version(project, tmp_path):
    # the reported case: base given as a file, no active version, val mIoU 44.6 % -> 39.6 %
    _register(project, _result(tmp_path, "completed", 0.396, 0.446), "auto")
    assert project.get_model_version("v1") is not None  # kept, so the user can still choose it
    assert project.active_model_version() is None
    _register(project, _result(tmp_path, "completed", 0.47, 0.446, "v2"), "auto")
    assert project.active_model_version().version == "v2"
    _register(project, _result(tmp_path, "completed", 0.30, 0.446, "v3"), "yes")
    assert project.active_model_version().version == "v3"  # an explicit yes wins


def test_cancelled_before_beating_the_start_adds_no_version(project, tmp_path, capsys):
    _register(project, _result(tmp_path, "cancelled", 0.40, 0.446), "auto")
    assert project.model_versions() == []
    assert "not added" in capsys.readouterr().err
    _register(project, _result(tmp_path, "cancelled", 0.45, 0.446, "v2"), "auto")
    assert [v.version for v in project.model_versions()] == ["v2"]


def test_summary_states_the_gain_with_its_uncertainty(tmp_path, capsys):
    _summary(_result(tmp_path, "completed", 0.471, 0.446))
    err = capsys.readouterr().err
    assert "44.6% -> 47.1% (+2.5 ± 3.1 points on 8 images)" in err
