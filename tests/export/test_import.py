"""Imports: labelme (against labelme's own converter output), VOC and Cityscapes round trips."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ExportError
from segstudio.core.project import Project, Status
from segstudio.core.schemes import cityscapes_scheme, voc_scheme
from segstudio.export.cityscapes_import import preview_cityscapes
from segstudio.export.import_common import run_import
from segstudio.export.labelme_import import preview_labelme, shape_to_mask
from segstudio.export.project_export import export_project
from segstudio.export.voc import VOC_BASE
from segstudio.export.voc_import import preview_voc
from tests.fakes import RecordingTask


def _boundary_only(a: np.ndarray, b: np.ndarray) -> tuple[int, bool]:
    """(#differing pixels, whether each differing pixel sits on a label boundary of b)."""
    differ = a != b
    padded = np.pad(b, 1, mode="edge")
    neighbours = [
        padded[1 + dy : 1 + dy + b.shape[0], 1 + dx : 1 + dx + b.shape[1]]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
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
        with (
            Image.open(png) as theirs,
            Image.open(tmp_path / "voc" / VOC_BASE / "SegmentationClass" / png.name) as mine,
        ):
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
    doc = {
        "version": "5.0.1",
        "shapes": shapes,
        "imagePath": "gone.png",
        "imageData": base64.b64encode(buffer.getvalue()).decode(),
        "imageHeight": 40,
        "imageWidth": 50,
    }
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


def _against_hash(path: Path) -> str:
    """The split SegStudio's hash would NOT give this file in a new project (imports copy bytes)."""
    from segstudio.core.project import DEFAULT_VAL_FRACTION, content_hash, split_for_hash

    return "train" if split_for_hash(content_hash(path), DEFAULT_VAL_FRACTION) == "val" else "val"


def test_voc_import_keeps_the_datasets_own_split_not_the_hash_split(voc_project, tmp_path):
    """ImageSets decide train/val even where they disagree with the hash split a new project would use."""
    from segstudio.core.project import split_for_hash

    with voc_project.open() as project:
        export_project(project, "voc", tmp_path / "voc")
    root = tmp_path / "voc" / VOC_BASE
    wanted = {jpg.stem: _against_hash(jpg) for jpg in sorted((root / "JPEGImages").glob("*.jpg"))}
    sets = root / "ImageSets" / "Segmentation"
    for split in ("train", "val"):
        (sets / f"{split}.txt").write_text("".join(f"{i}\n" for i, s in wanted.items() if s == split))
    plan = preview_voc(tmp_path / "voc")
    assert plan.warnings == []
    project_dir = run_import(plan, tmp_path / "back")
    with Project.open(project_dir) as project:
        records = project.images()
        assert sorted(Path(r.rel_path).stem for r in records) == sorted(wanted)
        for rec in records:
            assert wanted[Path(rec.rel_path).stem] != split_for_hash(rec.content_hash, project.val_fraction)
            assert rec.split == wanted[Path(rec.rel_path).stem], rec.rel_path
        # touching a file (same content) must not drop the pinned split when the project reopens
        first = project.image_path(records[0])
        stat = first.stat()
        os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with Project.open(project_dir) as project:
        assert project.last_reconcile.changed == [records[0].rel_path]
        assert {Path(r.rel_path).stem: r.split for r in project.images()} == wanted


def test_cityscapes_import_keeps_the_datasets_split(tmp_path, photo_project_factory):
    from segstudio.core.project import split_for_hash

    proj = photo_project_factory(tmp_path, cityscapes_scheme(), [0, 11, 13, 10], scale=0.25)
    with proj.open() as project:
        export_project(project, "cityscapes", tmp_path / "cs")
    cs = tmp_path / "cs"
    sources = {
        e["name"]: e["source"] for e in json.loads((cs / "segstudio_manifest.json").read_text())["items"]
    }
    expected, source_of = {}, {}
    for image in sorted(cs.glob("leftImg8bit/*/*/*_leftImg8bit.png")):
        split, city, base = (
            image.parent.parent.name,
            image.parent.name,
            image.name[: -len("_leftImg8bit.png")],
        )
        wanted = _against_hash(image)
        expected[str(Path(sources[base]).with_suffix(".png"))] = wanted
        source_of[str(Path(sources[base]).with_suffix(".png"))] = sources[base]
        if wanted != split:  # move the image and all its gtFine files to the other split
            for kind in ("leftImg8bit", "gtFine"):
                (cs / kind / wanted / city).mkdir(parents=True, exist_ok=True)
                for f in (cs / kind / split / city).glob(f"{base}_*"):
                    f.rename(cs / kind / wanted / city / f.name)
    assert len(expected) == len(proj.masks)
    project_dir = run_import(preview_cityscapes(cs), tmp_path / "back")
    with Project.open(project_dir) as project:
        for rel, split in expected.items():
            rec = project.get(rel)
            assert rec is not None, rel
            assert split != split_for_hash(rec.content_hash, project.val_fraction)
            assert rec.split == split, rel
            assert rec.status == Status.DONE and np.array_equal(
                project.load_mask(rec), proj.masks[source_of[rel]]
            )


def test_voc_image_listed_in_both_train_and_val_is_reported(voc_project, tmp_path):
    with voc_project.open() as project:
        report = export_project(project, "voc", tmp_path / "voc")
    sets = tmp_path / "voc" / VOC_BASE / "ImageSets" / "Segmentation"
    name = report.names["coffee.jpg"]
    for split in ("train", "val"):
        ids = sets.joinpath(f"{split}.txt").read_text().split()
        if name not in ids:
            sets.joinpath(f"{split}.txt").write_text("".join(f"{i}\n" for i in ids + [name]))
    plan = preview_voc(tmp_path / "voc")
    assert plan.warnings == [f"{name} is listed in both train.txt and val.txt; imported as train"]
    assert f"warning: {name} is listed in both" in plan.describe()  # shown with the mapping, before writing
    assert [s.split for s in plan.samples if s.rel_path == f"{name}.jpg"] == ["train"]
    assert len(plan.samples) == len(voc_project.masks)


def test_import_removes_staging_left_by_a_killed_import_only(labelme_example, tmp_path):
    """A dead process's staging folder is deleted; one owned by a live process is left alone."""
    dead_pid = 2**22 + 12345  # above Linux's largest possible pid (2**22), so no process has it
    dead = tmp_path / f".proj.segstudio-import-{dead_pid}-deadbeef"
    alive = tmp_path / f".proj.segstudio-import-{os.getpid()}-0000beef"
    for folder in (dead, alive):
        (folder / ".segstudio").mkdir(parents=True)
        (folder / "half.jpg").write_bytes(b"half")
    run_import(preview_labelme(labelme_example / "data_annotated"), tmp_path / "proj")
    assert not dead.exists()
    assert alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "proj"])
