"""The pre-export check lists problems before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.errors import ExportError
from segstudio.core.project import Status
from segstudio.core.schemes import voc_scheme
from segstudio.export.common import ExportOptions
from segstudio.export.project_export import check_project, export_project


def test_problems_are_listed(tmp_path, photo_project_factory):
    proj = photo_project_factory(tmp_path, voc_scheme(), [0, 15, 7], scale=0.2)
    with proj.open() as project:
        recs = {r.rel_path: r for r in project.images()}
        project.delete_mask(recs["astronaut.jpg"], status=Status.DONE)  # done but no mask
        project.save_mask(
            recs["coffee.jpg"], np.full(recs["coffee.jpg"].shape, 255, np.uint8), status=Status.DONE
        )
        bad = proj.masks["cats/chelsea.png"].copy()
        bad[0:4, 0:4] = 40  # VOC has 21 classes
        project.save_mask(recs["cats/chelsea.png"], bad, status=Status.DONE)
        report = check_project(project, "voc", ExportOptions(split="train"))
        codes = {(p.code, p.rel_path) for p in report.problems}
        assert ("no_mask", "astronaut.jpg") in codes
        assert ("empty_mask", "coffee.jpg") in codes
        assert ("unknown_class", "cats/chelsea.png") in codes
        assert ("no_val", None) in codes
        assert "40" in next(p.message for p in report.errors if p.code == "unknown_class")
        assert [p.code for p in report.errors] == ["unknown_class"]
        with pytest.raises(ExportError, match=r"cats/chelsea\.png uses class indices 40"):
            export_project(project, "voc", tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_nothing_to_export_is_an_error(tmp_path, photo_project_factory):
    proj = photo_project_factory(
        tmp_path,
        voc_scheme(),
        [0, 15, 7],
        scale=0.2,
        photos=["coffee.jpg"],
        statuses={"coffee.jpg": Status.IN_PROGRESS},
    )
    with proj.open() as project:
        report = check_project(project, "voc")
        assert [p.code for p in report.errors] == ["no_items"]
        assert check_project(project, "voc", ExportOptions(include="mask")).errors == []


def test_unknown_format_and_options_name_the_choices():
    from segstudio.export.registry import get_format, get_importer

    with pytest.raises(ExportError, match="choose one of: voc, cityscapes, coco, masks, camvid, yolo"):
        get_format("kitti")
    with pytest.raises(ExportError, match="choose one of: voc, cityscapes, labelme, masks, camvid, coco"):
        get_importer("cvat")
    with pytest.raises(ExportError, match="random:F"):
        ExportOptions(split="half")
    with pytest.raises(ExportError, match="'done' or 'mask'"):
        ExportOptions(include="all")
