"""Removing / merging a class rewrites every mask and prediction so no pixel changes meaning."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import SchemeError
from segstudio.core.project import Project, Status
from segstudio.core.scheme_edit import merge_lut, plan_merge, remove_class
from segstudio.core.schemes import ClassDef, LabelScheme

NAMES = ("road", "car", "tree", "sky")


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(folder / f"{i}.png")
    scheme = LabelScheme("street", tuple(ClassDef(n, (10 * i, 20, 30)) for i, n in enumerate(NAMES)))
    with Project.open(folder, scheme=scheme) as p:
        yield p


def _labels() -> np.ndarray:
    mask = np.array([[0, 1, 2, 3, 255, 1]] * 4, np.uint8)
    return mask


def test_lut_moves_later_classes_down_and_keeps_unlabeled():
    lut = merge_lut(4, 1, 3)
    assert lut[[0, 1, 2, 3, 255]].tolist() == [0, 2, 1, 2, 255]
    assert merge_lut(4, 2, 0)[[0, 1, 2, 3]].tolist() == [0, 1, 0, 2]


def test_merge_rewrites_masks_and_predictions_and_names_stay_with_their_pixels(project):
    first, second = project.images()
    project.save_mask(first, _labels(), Status.DONE)
    conf = np.full((4, 6), 200, np.uint8)
    project.save_prediction(second, _labels(), conf, "v1", raw_labels=_labels())
    before_names = [[NAMES[v] if v < 4 else "-" for v in row] for row in _labels()]
    plan = plan_merge(project, source=1, target=3)  # car -> sky
    assert plan.files_with_source == 3 and plan.scheme.names == ["road", "tree", "sky"]
    remove_class(project, plan)
    assert project.scheme.names == ["road", "tree", "sky"]
    names = project.scheme.names
    for labels in (
        project.load_mask(project.get(first.rel_path)),
        project.load_prediction(project.get(second.rel_path)).labels,
        project.load_prediction(project.get(second.rel_path)).raw_labels,
    ):
        after = [[names[v] if v < 3 else "-" for v in row] for row in labels]
        expected = [[("sky" if n == "car" else n) for n in row] for row in before_names]
        assert after == expected
    assert project.get(first.rel_path).status == Status.DONE
    assert not list(project.mask_path(first).parent.parent.rglob("*scheme-edit*")), "staged files left"


def test_delete_refuses_a_used_class_without_a_target_but_removes_an_unused_one(project):
    first = project.images()[0]
    project.save_mask(first, np.array([[0, 3] * 3] * 4, np.uint8))
    with pytest.raises(SchemeError, match="choose the class its pixels become"):
        plan_merge(project, source=3, target=None)
    remove_class(project, plan_merge(project, source=1, target=None))  # car: unused
    assert project.scheme.names == ["road", "tree", "sky"]
    assert project.load_mask(project.get(first.rel_path)).tolist() == [[0, 2] * 3] * 4  # sky moved 3 -> 2


def test_merge_into_itself_is_refused(project):
    with pytest.raises(SchemeError):
        plan_merge(project, 2, 2)
