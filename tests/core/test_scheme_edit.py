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


def test_merge_keeps_the_mask_image_hash_that_repair_uses(project):
    from segstudio.core import masks as mask_io

    first = project.images()[0]
    project.save_mask(first, _labels(), Status.DONE)
    digest = mask_io.read_image_hash(project.mask_path(first))
    assert digest
    remove_class(project, plan_merge(project, source=1, target=3))
    assert mask_io.read_image_hash(project.mask_path(first)) == digest


def test_undo_brings_the_merged_class_back_byte_for_byte(project):
    from segstudio.core.scheme_undo import undo_available, undo_remove_class

    first, second = project.images()
    project.save_mask(first, _labels(), Status.DONE)
    project.save_prediction(second, _labels(), np.full((4, 6), 200, np.uint8), "v1", raw_labels=_labels())
    files = [project.mask_path(first), project.prediction_path(second), project.raw_prediction_path(second)]
    before = [p.read_bytes() for p in files]
    scheme = project.scheme
    assert undo_available(project) is None
    remove_class(project, plan_merge(project, source=1, target=3))
    assert undo_available(project) == "car"
    summary = undo_remove_class(project)
    assert project.scheme == scheme
    assert [p.read_bytes() for p in files] == before
    assert (summary.restored, summary.renumbered) == (3, 0)
    assert undo_available(project) is None


def test_undo_renumbers_work_saved_after_the_merge_and_keeps_it(project):
    from segstudio.core.scheme_undo import undo_remove_class

    first, second = project.images()
    project.save_mask(first, _labels(), Status.DONE)
    remove_class(project, plan_merge(project, source=1, target=3))  # car -> sky; tree 2->1, sky 3->2
    edited = project.load_mask(project.get(first.rel_path))
    edited[0, 0] = 1  # tree, painted after the merge in the new numbering
    project.save_mask(project.get(first.rel_path), edited, Status.DONE)
    project.save_mask(second, np.full((4, 6), 2, np.uint8), Status.DONE)  # sky, new numbering
    summary = undo_remove_class(project)
    assert (summary.restored, summary.renumbered) == (0, 1)
    assert project.scheme.names == list(NAMES)
    names = project.scheme.names
    assert {names[v] for v in project.load_mask(project.get(second.rel_path)).ravel()} == {"sky"}
    back = project.load_mask(project.get(first.rel_path))
    assert names[back[0, 0]] == "tree"
    assert names[back[0, 1]] == "sky"  # the merged car pixel was changed since: it stays sky
    assert names[back[0, 2]] == "tree" and names[back[0, 3]] == "sky" and back[0, 4] == 255


def test_no_undo_once_the_scheme_changed_again(project):
    from segstudio.core.scheme_undo import undo_available, undo_remove_class

    project.save_mask(project.images()[0], _labels(), Status.DONE)
    remove_class(project, plan_merge(project, source=1, target=3))
    remove_class(project, plan_merge(project, source=0, target=1))  # the newer removal replaces the undo
    assert undo_available(project) == "road"
    undo_remove_class(project)
    assert undo_available(project) is None
    with pytest.raises(SchemeError, match="no class removal to undo"):
        undo_remove_class(project)
