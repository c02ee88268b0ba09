"""YOLO segmentation export: polygons rasterised back the way Ultralytics does agree with the masks.

Tolerance (measured on the 24 real CamVid masks and the generated hard-case masks): at most 0.1% of
an image's pixels may differ, all of them on a class boundary; overall it is ~0.004% (without
bridging holes it would be ~1%, every hole filled).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from segstudio.core.errors import ExportError
from segstudio.core.project import Project
from segstudio.export.project_export import export_project
from segstudio.export.yolo_polygons import bridge_holes, region_polygons


def ultralytics_polygon2mask(shape: tuple[int, int], lines: list[str]) -> np.ndarray:
    """Ultralytics' reading of a label file: denormalise, cast to int32, cv2.fillPoly, in file order."""
    h, w = shape
    mask = np.full(shape, 255, dtype=np.uint8)
    for line in lines:
        values = line.split()
        points = np.array(values[1:], dtype=np.float32).reshape(-1, 2) * np.array([w, h], dtype=np.float32)
        cv2.fillPoly(mask, [points.astype(np.int32)], int(values[0]))
    return mask


def _on_boundary(mask: np.ndarray, where: np.ndarray) -> bool:
    kernel = np.ones((3, 3), np.uint8)
    edge = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    return bool(edge[where].all())


def _data_yaml(path: Path) -> dict[str, object]:
    """The few keys we write, read without PyYAML (not a dependency): 'key: value' and the names block."""
    out: dict[str, object] = {"names": {}}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("  "):
            index, name = line.strip().split(": ", 1)
            out["names"][int(index)] = name.strip('"')
        else:
            key, _, value = line.partition(":")
            if value.strip():
                out[key] = value.split("#")[0].strip()
    return out


def _check_export(
    out: Path, masks: dict[str, np.ndarray], names: dict[str, str], splits: dict[str, str], skip: set[int]
) -> float:
    data = _data_yaml(out / "data.yaml")
    assert "path" not in data
    differing = total = 0
    for rel, mask in masks.items():
        stem = Path(names[rel]).stem
        split = splits[rel]
        assert (out / str(data[split]) / names[rel]).is_file()
        lines = (out / "labels" / split / f"{stem}.txt").read_text().splitlines()
        for line in lines:
            values = line.split()
            assert int(values[0]) < int(data["nc"]) and int(values[0]) not in skip
            coords = np.array(values[1:], dtype=float)
            assert len(coords) >= 6 and len(coords) % 2 == 0 and coords.min() >= 0 and coords.max() <= 1
        expected = mask.copy()
        for value in skip:
            expected[expected == value] = 255
        back = ultralytics_polygon2mask(mask.shape, lines)
        wrong = back != expected
        assert wrong.mean() <= 0.001, (rel, wrong.mean())
        assert _on_boundary(expected, wrong)
        differing += int(wrong.sum())
        total += mask.size
    return differing / total


def test_real_camvid_masks_round_trip_through_ultralytics_rasterisation(
    camvid_project, camvid_sample, tmp_path
):
    out = tmp_path / "yolo"
    with Project.open(camvid_project) as project:
        masks = {r.rel_path: project.load_mask(r) for r in project.images()}
        splits = {r.rel_path: r.split for r in project.images()}
        report = export_project(project, "yolo", out)
        scheme = project.scheme
    assert _data_yaml(out / "data.yaml")["names"] == dict(enumerate(scheme.names))
    assert _check_export(out, masks, report.names, splits, skip=set()) < 1e-4


def test_generated_hard_cases_background_is_left_out_and_reexport_is_incremental(voc_project, tmp_path):
    out = tmp_path / "yolo"
    with voc_project.open() as project:
        splits = {r.rel_path: r.split for r in project.images()}
        report = export_project(project, "yolo", out)
        again = export_project(project, "yolo", out)
    assert (again.written, again.reused) == (0, len(voc_project.masks))
    assert _check_export(out, voc_project.masks, report.names, splits, skip={0}) < 1e-3


def test_a_ring_is_one_polygon_whose_hole_stays_empty():
    mask = np.zeros((60, 80), dtype=np.uint8)
    cv2.circle(mask, (40, 30), 25, 1, -1)
    cv2.circle(mask, (40, 30), 12, 0, -1)
    cv2.rectangle(mask, (5, 5), (9, 9), 1, -1)  # a second region
    polygons = region_polygons(mask == 1)
    assert len(polygons) == 2
    painted = np.zeros_like(mask)
    for ring in polygons:
        cv2.fillPoly(painted, [ring.astype(np.int32).reshape(-1, 1, 2)], 1)
    assert np.array_equal(painted, mask)
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    hole = np.array([[4, 4], [4, 6], [6, 6], [6, 4]])
    ring = bridge_holes(outer, [hole])
    assert len(ring) == len(outer) + len(hole) + 2  # the cut is walked there and back


def test_reexport_after_ultralytics_wrote_its_label_cache(voc_project, tmp_path):
    out = tmp_path / "yolo"
    with voc_project.open() as project:
        export_project(project, "yolo", out)
        (out / "labels" / "train.cache").write_bytes(b"ultralytics cache")  # what its first read leaves
        report = export_project(project, "yolo", out)
        assert report.reused == len(voc_project.masks)
        assert not (out / "labels" / "train.cache").exists()  # stale after a re-export: dropped
        (out / "notes.txt").write_text("mine")
        with pytest.raises(ExportError, match=r"notes\.txt"):
            export_project(project, "yolo", out)
