"""COCO export read back with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segstudio.core.project import Status
from segstudio.core.schemes import voc_scheme
from segstudio.export.project_export import export_project

# pycocotools' C decoder predates numpy 2's copy keyword; harmless for these reads.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def test_pycocotools_decodes_exact_masks(voc_project, tmp_path):
    out = tmp_path / "coco"
    with voc_project.open() as project:
        splits = {rec.rel_path: rec.split for rec in project.images()}
        export_project(project, "coco", out)
    _verify(out, voc_project.masks, splits)


def test_incremental_reexport_keeps_annotations_of_unchanged_images(voc_project, tmp_path):
    out = tmp_path / "coco"
    masks = dict(voc_project.masks)
    with voc_project.open() as project:
        splits = {rec.rel_path: rec.split for rec in project.images()}
        export_project(project, "coco", out)
        changed = masks["coffee.jpg"].copy()
        changed[:20, :20] = 9  # a new class (chair) appears
        project.save_mask(project.get("coffee.jpg"), changed, status=Status.DONE)
        masks["coffee.jpg"] = changed
        report = export_project(project, "coco", out)
    assert (report.written, report.reused) == (1, 3)
    _verify(out, masks, splits)


def _verify(out, masks, splits):
    scheme = voc_scheme()
    seen = set()
    for split in ("train", "val"):
        coco = COCO(str(out / "annotations" / f"instances_{split}.json"))
        cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert cats == {i + 1: n for i, n in enumerate(scheme.names)}
        images = coco.loadImgs(coco.getImgIds())
        assert len(images) == sum(1 for s in splits.values() if s == split)
        for img in images:
            rel = img["segstudio_source"]
            seen.add(rel)
            assert "/" not in img["file_name"]  # relative to images/<split>/, as Datumaro and CVAT expect
            assert (out / "images" / split / img["file_name"]).is_file()
            mask = masks[rel]
            assert (img["height"], img["width"]) == mask.shape
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
            present = sorted(int(v) for v in np.unique(mask) if v != 255)
            assert sorted(a["category_id"] - 1 for a in anns) == present  # one annotation per (image, class)
            rebuilt = np.full(mask.shape, 255, dtype=np.uint8)
            for ann in anns:
                binary = coco.annToMask(ann).astype(bool)
                expected = mask == ann["category_id"] - 1
                assert np.array_equal(binary, expected)
                assert ann["area"] == int(expected.sum())
                ys, xs = np.nonzero(expected)
                assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
                assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), expected)
                rebuilt[binary] = ann["category_id"] - 1
            assert np.array_equal(rebuilt, mask)
    assert seen == set(masks)
    ids = [
        a["id"]
        for split in ("train", "val")
        for a in COCO(str(out / "annotations" / f"instances_{split}.json")).dataset["annotations"]
    ]
    assert len(ids) == len(set(ids))
