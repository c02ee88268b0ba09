"""Imports: labelme (against labelme's own converter output), VOC and Cityscapes round trips."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ExportError
from segstudio.core.project import Project, Status
from segstudio.core.schemes import cityscapes_scheme, voc_scheme
from segstudio.core.tasks import RecordingTask
from segstudio.export.cityscapes_import import preview_cityscapes
from segstudio.export.import_common import run_import
from segstudio.export.labelme_import import preview_labelme, shape_to_mask
from segstudio.export.project_export import export_project
from segstudio.export.voc import VOC_BASE
from segstudio.export.voc_import import preview_voc


def _boundary_only(a: np.ndarray, b: np.ndarray) -> tuple[int, bool]:
    """(#differing pixels, whether each differing pixel sits on a label boundary of b)."""
    differ = a != b
    padded = np.pad(b, 1, mode="edge")
    neighbours = [padded[1 + dy : 1 + dy + b.shape[0], 1 + dx : 1 + dx + b.shape[1]] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    on_edge = np.any([n != b for n in neighbours], axis=0)
    return int(differ.sum()), bool(on_edge[differ].all())


def _expected(labelme_example: Path, stem: str) -> np.ndarray:
    return np.array(Image.open(labelme_example / "expected_voc" / "SegmentationClass" / f"{stem}.png"))


def test_labelme_import_matches_labelme_converter_and_exports_back(labelme_example, tmp_path):
    source = labelme_example / "data_annotated"
    plan = preview_labelme(source)
    assert not any(tmp_path.iterdir())  # the preview wrote nothing
    rows = {r.source: r for r in plan.mapping}
    assert rows["__ignore__"].target_index == 255
    assert rows["_background_"].target_index == 0
    assert rows["person"].target_index == 15 and rows["tv/monitor"].target_index == 20
    assert "person" in plan.describe() and "void (255)" in plan.describe()
    task = RecordingTask()
    project_dir = run_import(plan, tmp_path / "project", task)
    assert task.progress[-1] == (6, 6)
    expected_names = (labelme_example / "expected_voc" / "class_names.txt").read_text().split("\n")
    with Project.open(project_dir) as project:
        records = project.images()
        assert len(records) == 3 and all(r.status == Status.DONE for r in records)
        assert [n.replace("_background_", "background") for n in expected_names if n] == project.scheme.names
        for rec in records:
            mask = project.load_mask(rec)
            count, on_edge = _boundary_only(mask, _expected(labelme_example, Path(rec.rel_path).stem))
            assert count <= 3 and on_edge, (rec.rel_path, count)
            assert (project.image_path(rec)).read_bytes() == (source / rec.rel_path).read_bytes()
        export_project(project, "voc", tmp_path / "voc")
    for png in sorted((labelme_example / "expected_voc" / "SegmentationClass").glob("*.png")):
        ours = np.array(Image.open(tmp_path / "voc" / VOC_BASE / "SegmentationClass" / png.name))
        count, on_edge = _boundary_only(ours, np.array(Image.open(png)))
        assert count <= 3 and on_edge, (png.name, count)
        with Image.open(png) as theirs, Image.open(tmp_path / "voc" / VOC_BASE / "SegmentationClass" / png.name) as mine:
            assert mine.mode == theirs.mode == "P"
            assert mine.getpalette()[: 21 * 3] == theirs.getpalette()[: 21 * 3]


def test_labelme_onto_voc_scheme_maps_loose_names(labelme_example):
    plan = preview_labelme(labelme_example / "data_annotated", scheme=voc_scheme())
    rows = {r.source: r for r in plan.mapping}
    assert rows["potted plant"].target_name == "pottedplant"
    assert rows["tv/monitor"].target_name == "tvmonitor"
    assert rows["_background_"].target_index == 0
    assert plan.unmapped == []


def test_labelme_shapes_and_embedded_image(tmp_path):
    rgb = np.full((40, 50, 3), 200, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    shapes = [
        {"label": "box", "shape_type": "rectangle", "points": [[30, 20], [10, 5]]},
        {"label": "disc", "shape_type": "circle", "points": [[40, 30], [40, 35]]},
        {"label": "wire", "shape_type": "line", "points": [[0, 38], [49, 38]]},
        {"label": "dot", "shape_type": "point", "points": [[5, 30]]},
        {"label": "__ignore__", "shape_type": "polygon", "points": [[12, 7], [14, 7], [14, 9], [12, 9]]},
    ]
    doc = {"version": "5.0.1", "shapes": shapes, "imagePath": "gone.png", "imageData": base64.b64encode(buffer.getvalue()).decode(), "imageHeight": 40, "imageWidth": 50}
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json").write_text(json.dumps(doc))
    plan = preview_labelme(src)
    names = plan.scheme.names
    assert names == ["background", "box", "disc", "dot", "wire"]
    mask = plan.samples[0].load_mask()
    assert (mask[5:21, 10:31][mask[5:21, 10:31] != 255] == 1).all() and (mask[7:10, 12:15] == 255).all()
    assert mask[30, 40] == 2 and (mask[30, 34:47] == 2).sum() >= 9
    assert (mask[36:41, 20] == 4).all() and mask[30, 5] == 3
    assert mask[0, 49] == 0
    project_dir = run_import(plan, tmp_path / "proj")
    assert np.array_equal(np.array(Image.open(project_dir / "gone.png").convert("RGB")), rgb)
    with pytest.raises(ExportError, match="unsupported labelme shape type 'spline'"):
        shape_to_mask("spline", [[0, 0]], (5, 5))


def test_import_refuses_non_empty_target_and_unmapped_labels(labelme_example, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "x.txt").write_text("x")
    plan = preview_labelme(labelme_example / "data_annotated")
    with pytest.raises(ExportError, match="not empty"):
        run_import(plan, target)
    from segstudio.core.schemes import ClassDef, LabelScheme

    tiny = LabelScheme("tiny", (ClassDef("background", (0, 0, 0)), ClassDef("person", (255, 0, 0))))
    plan = preview_labelme(labelme_example / "data_annotated", scheme=tiny)
    assert "bottle" in plan.unmapped and "UNMAPPED" in plan.describe()
    with pytest.raises(ExportError, match="bottle"):
        run_import(plan, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_cancelled_import_leaves_nothing(labelme_example, tmp_path):
    from segstudio.core.errors import CancelledError

    plan = preview_labelme(labelme_example / "data_annotated")
    with pytest.raises(CancelledError):
        run_import(plan, tmp_path / "proj", RecordingTask(cancel_after=4))
    assert list(tmp_path.iterdir()) == []


def test_voc_round_trip(voc_project, tmp_path):
    with voc_project.open() as project:
        splits = {r.rel_path: r.split for r in project.images()}
        report = export_project(project, "voc", tmp_path / "voc")
    plan = preview_voc(tmp_path / "voc")  # the parent of VOCdevkit is accepted
    assert plan.scheme == voc_scheme() and plan.unmapped == []
    assert {s.split for s in plan.samples} == set(splits.values())
    project_dir = run_import(plan, tmp_path / "back")
    with Project.open(project_dir) as project:
        for rel, name in report.names.items():
            rec = project.get(f"{name}.jpg")
            assert rec is not None and rec.status == Status.DONE
            assert np.array_equal(project.load_mask(rec), voc_project.masks[rel])
            assert rec.split == splits[rel]  # the dataset's own split, not the hash split


def test_cityscapes_round_trip(tmp_path, photo_project_factory):
    proj = photo_project_factory(tmp_path, cityscapes_scheme(), [0, 11, 13, 10], scale=0.25)
    with proj.open() as project:
        export_project(project, "cityscapes", tmp_path / "cs")
    plan = preview_cityscapes(tmp_path / "cs")
    rows = {r.source: r for r in plan.mapping}
    assert rows["26: car"].target_name == "car" and rows["9: parking"].target_index == 255
    project_dir = run_import(plan, tmp_path / "back")
    with Project.open(project_dir) as project:
        assert project.scheme == cityscapes_scheme()
        for rel, mask in proj.masks.items():
            rec = project.get(str(Path(rel).with_suffix(".png")))  # original names restored from the manifest
            assert rec is not None, rel
            assert np.array_equal(project.load_mask(rec), mask)


def test_voc_import_of_plain_devkit_without_lists(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    from skimage import data as skdata

    Image.fromarray(skdata.coffee()[:60, :80]).save(root / "JPEGImages" / "a.jpg")
    mask = np.zeros((60, 80), np.uint8)
    mask[10:20, 10:20] = 9
    mask[30:35, 30:35] = 77  # a value VOC does not define
    img = Image.fromarray(mask, mode="P")
    img.putpalette([0] * 768)
    img.save(root / "SegmentationClass" / "a.png")
    plan = preview_voc(tmp_path / "VOCdevkit")
    assert [s.rel_path for s in plan.samples] == ["a.jpg"] and plan.samples[0].split is None
    assert plan.unmapped == ["77: (no class name)"]
    shutil.rmtree(tmp_path / "VOCdevkit")


def test_labelme_import_in_place_keeps_images_where_they_are(labelme_example, tmp_path):
    from segstudio.export.import_common import can_import_in_place, import_in_place

    folder = tmp_path / "annotated"
    shutil.copytree(labelme_example / "data_annotated", folder)
    folder.chmod(0o755)
    plan = preview_labelme(folder, labels_file=labelme_example / "labels.txt")
    assert can_import_in_place(plan)
    before = sorted(p.name for p in folder.iterdir())
    assert import_in_place(plan) == folder
    assert sorted(p.name for p in folder.iterdir() if p.name != ".segstudio") == before  # no copies
    with Project.open(folder) as project:
        assert project.counts()[Status.DONE] == 3
        rec = project.get("2011_000025.jpg")
        count, on_edge = _boundary_only(project.load_mask(rec), _expected(labelme_example, "2011_000025"))
        assert count <= 3 and on_edge
    with pytest.raises(ExportError, match="already have masks"):
        import_in_place(preview_labelme(folder, labels_file=labelme_example / "labels.txt"))
