"""Cityscapes export read back by torchvision and by cityscapesScripts 2.3.0's own functions."""

from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.measure import label as connected_label
from torchvision.datasets import Cityscapes

from segstudio.core.errors import ExportError
from segstudio.core.schemes import CITYSCAPES_LABELS, cityscapes_scheme, voc_scheme
from segstudio.export.project_export import export_project
from segstudio.export.staging import MANIFEST_NAME

NAME_TO_LABEL = {lab.name: lab for lab in CITYSCAPES_LABELS}
# road (background), person (ring with hole), car (blobs), sky (corner ellipse)
CLASSES = [0, 11, 13, 10]


def expected_label_ids(mask: np.ndarray) -> np.ndarray:
    scheme = cityscapes_scheme()
    out = np.zeros(mask.shape, dtype=np.uint8)  # 255 (unlabeled) -> id 0
    for index, name in enumerate(scheme.names):
        out[mask == index] = NAME_TO_LABEL[name].id
    return out


@pytest.fixture
def cs_export(tmp_path, photo_project_factory):
    proj = photo_project_factory(tmp_path, cityscapes_scheme(), CLASSES, scale=0.35)
    out = tmp_path / "cityscapes"
    with proj.open() as project:
        splits = {rec.rel_path: rec.split for rec in project.images()}
        report = export_project(project, "cityscapes", out)
    return proj, out, report, splits


def test_torchvision_reads_every_sample(cs_export):
    proj, out, report, splits = cs_export
    by_name = {name: rel for rel, name in report.names.items()}
    seen = set()
    for split in ("train", "val"):
        dataset = Cityscapes(
            str(out), split=split, mode="fine", target_type=["semantic", "instance", "color", "polygon"]
        )
        assert len(dataset) == sum(1 for s in splits.values() if s == split) > 0
        for index in range(len(dataset)):
            image, (semantic, instance, color, polygon) = dataset[index]
            name = Path(dataset.images[index]).name[: -len("_leftImg8bit.png")]
            rel = by_name[name]
            seen.add(rel)
            label_ids = expected_label_ids(proj.masks[rel])
            assert np.array_equal(np.array(semantic), label_ids)
            assert image.size == semantic.size == instance.size == color.size
            assert polygon["imgHeight"] == label_ids.shape[0] and polygon["imgWidth"] == label_ids.shape[1]
            inst = np.array(instance)
            assert inst.dtype in (np.int32, np.uint16, np.int64) and inst.max() < 65536
            # classes without instances keep their id, classes with instances are id*1000+k per component
            person = label_ids == NAME_TO_LABEL["person"].id
            assert np.array_equal(
                inst[~person & (label_ids != NAME_TO_LABEL["car"].id)], label_ids[~person & (label_ids != 26)]
            )
            for lab in ("person", "car"):
                region = label_ids == NAME_TO_LABEL[lab].id
                components = connected_label(region, connectivity=2).max()
                ids = np.unique(inst[region])
                assert len(ids) == components
                assert (ids // 1000 == NAME_TO_LABEL[lab].id).all()
                assert sorted(ids % 1000) == list(range(components))
            rgba = np.array(color)
            assert rgba.shape[2] == 4
            for lab in ("road", "person", "car", "sky"):
                region = label_ids == NAME_TO_LABEL[lab].id
                assert (rgba[region][:, :3] == NAME_TO_LABEL[lab].color).all()
    assert seen == set(proj.masks)


def test_names_cities_and_manifest(cs_export):
    _proj, out, report, _ = cs_export
    assert report.names["cats/chelsea.png"] == "cats_000000_000000"
    assert report.names["space_shots/rocket.jpg"] == "space-shots_000000_000000"
    top = sorted(n for r, n in report.names.items() if "/" not in r)
    assert top == ["images_000000_000000", "images_000000_000001"]  # the project folder is 'images'
    for name in report.names.values():
        city = name.split("_")[0]
        assert "_" not in city and len(name.split("_")) == 3
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert {e["source"]: e["name"] for e in manifest["items"]} == report.names


def test_json2labelImg_reproduces_label_ids(cs_export, tmp_path):
    from cityscapesscripts.preparation.json2labelImg import json2labelImg

    _, out, _, _ = cs_export
    files = sorted(glob.glob(str(out / "gtFine" / "*" / "*" / "*_gtFine_polygons.json")))
    assert len(files) == 4
    for path in files:
        target = tmp_path / (Path(path).stem + "_ids.png")
        json2labelImg(path, str(target), "ids")
        rasterised = np.array(Image.open(target))
        ours = np.array(Image.open(path.replace("_polygons.json", "_labelIds.png")))
        differ = rasterised != ours
        # allowed: isolated one-pixel boundary disagreements; in practice the JSON is exact
        assert differ.sum() <= 0.001 * ours.size
        assert np.array_equal(rasterised, ours), f"{path}: {differ.sum()} pixels differ"
        objects = json.loads(Path(path).read_text())["objects"]
        assert {o["label"] for o in objects} >= {"person", "car"}


def test_createTrainIdLabelImgs_matches_our_train_ids(cs_export, tmp_path, monkeypatch):
    from cityscapesscripts.preparation import createTrainIdLabelImgs

    _, out, _, _ = cs_export
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ours = {p: np.array(Image.open(p)) for p in glob.glob(str(copy / "gtFine/*/*/*_labelTrainIds.png"))}
    for p in ours:
        Path(p).unlink()
    monkeypatch.setenv("CITYSCAPES_DATASET", str(copy))
    createTrainIdLabelImgs.main()
    assert ours
    for p, train_ids in ours.items():
        regenerated = np.array(Image.open(p))
        assert np.array_equal(regenerated, train_ids)
        assert set(np.unique(train_ids)) <= {0, 10, 11, 13, 255}


def test_evalPixelLevelSemanticLabeling_scores_ground_truth_copy_1(cs_export, tmp_path, monkeypatch):
    if not hasattr(np, "in1d"):  # numpy >= 2.4 removed in1d; cityscapesScripts 2.3.0 still calls it
        monkeypatch.setattr(np, "in1d", np.isin, raising=False)
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev

    _, out, _, splits = cs_export
    results = tmp_path / "results"
    results.mkdir()
    gts = sorted(glob.glob(str(out / "gtFine" / "val" / "*" / "*_gtFine_labelIds.png")))
    assert len(gts) == sum(1 for s in splits.values() if s == "val") > 0
    for gt in gts:
        shutil.copy(gt, results / Path(gt).name.replace("_gtFine_labelIds", "_pred"))
    monkeypatch.setenv("CITYSCAPES_DATASET", str(out))
    monkeypatch.setenv("CITYSCAPES_RESULTS", str(results))
    monkeypatch.setattr(ev.args, "predictionPath", None)
    monkeypatch.setattr(ev.args, "predictionWalk", None)
    monkeypatch.setattr(ev.args, "quiet", True)
    monkeypatch.setattr(ev.args, "exportFile", str(tmp_path / "eval" / "result.json"))
    predictions = [ev.getPrediction(ev.args, gt) for gt in gts]
    result = ev.evaluateImgLists(predictions, gts, ev.args)
    assert result["averageScoreClasses"] == pytest.approx(1.0)
    assert result["averageScoreInstClasses"] == pytest.approx(1.0)
    assert result["classScores"]["person"] == pytest.approx(1.0)


def test_unmapped_classes_are_listed(tmp_path, photo_project_factory):
    proj = photo_project_factory(tmp_path, voc_scheme(), [0, 15, 7], scale=0.2, photos=["coffee.jpg"])
    with proj.open() as project, pytest.raises(ExportError) as info:
        export_project(project, "cityscapes", tmp_path / "out")
    message = str(info.value)
    for name in ("aeroplane", "tvmonitor", "pottedplant"):
        assert name in message
    assert "person" not in message.split("Cityscapes label:")[1].split(".")[0].split(", ")
    assert not (tmp_path / "out").exists()
