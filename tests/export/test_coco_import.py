"""COCO import: our export read back exactly; polygons, RLE and crowd regions agree with pycocotools' COCO API."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segstudio.core.errors import ExportError, UnsafePathError
from segstudio.core.project import Project
from segstudio.core.schemes import ClassDef, LabelScheme, voc_scheme
from segstudio.export.coco_import import preview_coco
from segstudio.export.import_common import run_import
from segstudio.export.project_export import export_project

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def test_round_trip_of_the_coco_export_on_real_photos(voc_project, tmp_path):
    out = tmp_path / "coco"
    with voc_project.open() as project:
        splits = {r.rel_path: r.split for r in project.images()}
        export_project(project, "coco", out)
    plan = preview_coco(out)
    assert not plan.unmapped and len(plan.samples) == len(voc_project.masks)
    target = run_import(plan, tmp_path / "back")
    with Project.open(target) as project:
        assert [(c.name, c.color) for c in project.scheme.classes] == [
            (c.name, c.color) for c in voc_scheme().classes
        ]
        assert sorted(r.rel_path for r in project.images()) == sorted(voc_project.masks)
        for rec in project.images():
            assert np.array_equal(project.load_mask(rec), voc_project.masks[rec.rel_path])
            assert rec.split == splits[rec.rel_path]


def _polygons(binary: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def test_polygons_uncompressed_rle_and_crowd_match_the_coco_api(voc_project, tmp_path):
    """A hand-made COCO file over the real photos; expected pixels come from COCO.annToMask."""
    root = tmp_path / "dataset"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, annotations = [], []
    for image_id, (rel, mask) in enumerate(sorted(voc_project.masks.items()), start=1):
        name = rel.replace("/", "_")
        (root / "images" / name).write_bytes((voc_project.image_dir / rel).read_bytes())
        h, w = mask.shape
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
        for value in (
            int(v) for v in np.unique(mask) if v not in (0, 255)
        ):  # COCO leaves background unannotated
            binary = mask == value
            if value == 15:  # person: a crowd region as uncompressed RLE
                rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
                counts = [int(n) for n in _uncompressed_counts(binary)]
                segmentation, crowd = {"size": [h, w], "counts": counts}, 1
                assert mask_utils.decode(mask_utils.frPyObjects(segmentation, h, w)).sum() == mask_utils.area(
                    rle
                )
            else:
                segmentation, crowd = _polygons(binary), 0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 100 + value,
                    "segmentation": segmentation,
                    "iscrowd": crowd,
                    "area": float(binary.sum()),
                }
            )
    categories = [{"id": 100 + i, "name": n.upper()} for i, n in enumerate(voc_scheme().names)]
    (root / "annotations" / "instances_val.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    plan = preview_coco(root, scheme=voc_scheme())
    assert not plan.unmapped and {s.split for s in plan.samples} == {"val"}
    coco = COCO(str(root / "annotations" / "instances_val.json"))
    for sample in plan.samples:
        img = next(i for i in images if i["file_name"] == sample.rel_path)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        expected = np.full((img["height"], img["width"]), 255, dtype=np.uint8)
        for ann in sorted(anns, key=lambda a: (not a["iscrowd"], -a["area"])):
            expected[coco.annToMask(ann).astype(bool)] = ann["category_id"] - 100
        got = sample.load_mask()
        assert np.array_equal(got, expected)
        assert set(np.unique(got)) - {255} == {a["category_id"] - 100 for a in anns}


def _uncompressed_counts(binary: np.ndarray) -> list[int]:
    flat = binary.T.reshape(-1).astype(np.uint8)  # column-major, as COCO RLE runs
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] == 1 else runs


def test_unknown_category_names_and_escaping_file_names_are_refused(voc_project, tmp_path):
    out = tmp_path / "coco"
    with voc_project.open() as project:
        export_project(project, "coco", out)
    other = LabelScheme("other", (ClassDef("background", (0, 0, 0)), ClassDef("person", (1, 2, 3))))
    plan = preview_coco(out, scheme=other)
    assert set(plan.unmapped) == {
        f"{i + 1}: {n}" for i, n in enumerate(voc_scheme().names) if n not in ("background", "person")
    }
    with pytest.raises(ExportError, match="no class in scheme"):
        run_import(plan, tmp_path / "refused")
    path = out / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    data["images"][0]["file_name"] = "../../../../etc/passwd"
    path.write_text(json.dumps(data))
    with pytest.raises(UnsafePathError, match="climbs out"):
        preview_coco(out)
    data["images"][0]["file_name"] = "/etc/passwd"
    path.write_text(json.dumps(data))
    with pytest.raises(UnsafePathError, match="absolute"):
        preview_coco(out)


def test_a_coco_file_with_missing_fields_is_a_clear_error(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "category_id": 1, "segmentation": []}],
                "categories": [{"id": 1, "name": "cat"}],
            }
        )
    )
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    with pytest.raises(ExportError, match=r"instances_train.json.*height"):
        preview_coco(tmp_path)
