"""VOC export read back by torchvision's own VOCSegmentation reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import VOCSegmentation

from segstudio.core.schemes import UNLABELED, voc_colormap
from segstudio.export.common import ExportOptions
from segstudio.export.project_export import export_project
from segstudio.export.voc import VOC_BASE, add_void_band


def test_torchvision_reads_every_sample_and_masks_equal_project(voc_project, tmp_path):
    out = tmp_path / "voc"
    with voc_project.open() as project:
        splits = {rec.rel_path: rec.split for rec in project.images()}
        report = export_project(project, "voc", out)
    assert report.exported == len(voc_project.masks)
    by_name = {report.names[rel]: rel for rel in voc_project.masks}
    seen = set()
    for image_set in ("train", "val", "trainval"):
        dataset = VOCSegmentation(str(out), year="2012", image_set=image_set)
        expected = [rel for rel in voc_project.masks if image_set == "trainval" or splits[rel] == image_set]
        assert len(dataset) == len(expected) > 0
        for index in range(len(dataset)):
            image, target = dataset[index]
            name = Path(dataset.images[index]).stem
            rel = by_name[name]
            seen.add(rel)
            assert np.array_equal(np.array(target), voc_project.masks[rel])
            assert target.mode == "P"
            assert image.size == target.size
    assert seen == set(voc_project.masks)


def test_jpeg_bytes_are_copied_and_png_sources_encoded_once(voc_project, tmp_path):
    out = tmp_path / "voc"
    with voc_project.open() as project:
        report = export_project(project, "voc", out)
    images = out / VOC_BASE / "JPEGImages"
    source = voc_project.image_dir / "astronaut.jpg"
    assert (images / f"{report.names['astronaut.jpg']}.jpg").read_bytes() == source.read_bytes()
    converted = images / f"{report.names['cats/chelsea.png']}.jpg"
    with Image.open(converted) as img:
        assert img.format == "JPEG"
        decoded = np.asarray(img.convert("RGB"), dtype=np.int16)
    original = np.asarray(
        Image.open(voc_project.image_dir / "cats/chelsea.png").convert("RGB"), dtype=np.int16
    )
    assert np.abs(decoded - original).mean() < 4  # one JPEG encode at quality 95, not a different picture


def test_palette_lists_and_class_names(voc_project, tmp_path):
    out = tmp_path / "voc"
    with voc_project.open() as project:
        report = export_project(project, "voc", out)
        scheme = project.scheme
        val = sorted(report.names[r.rel_path] for r in project.images() if r.split == "val")
    base = out / VOC_BASE
    with Image.open(base / "SegmentationClass" / f"{report.names['coffee.jpg']}.png") as img:
        palette = np.array(img.getpalette()[: 256 * 3], dtype=np.uint8).reshape(256, 3)
    assert np.array_equal(palette, voc_colormap(256))
    assert tuple(palette[UNLABELED]) == (224, 224, 192)
    sets = base / "ImageSets" / "Segmentation"
    assert sorted(sets.joinpath("val.txt").read_text().split()) == val
    trainval = sets.joinpath("trainval.txt").read_text().split()
    assert sorted(trainval) == sorted(report.names.values())
    assert base.joinpath("class_names.txt").read_text().splitlines() == scheme.names


def test_void_band_has_requested_width():
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[:, 10:] = 3
    banded = add_void_band(mask, 4)
    row = banded[10]
    assert (row == UNLABELED).sum() == 4
    assert np.array_equal(np.flatnonzero(row == UNLABELED), [8, 9, 10, 11])
    assert (banded[:, :8] == 0).all() and (banded[:, 12:] == 3).all()
    assert add_void_band(mask, 0) is mask


def test_void_band_option_reaches_the_files(voc_project, tmp_path):
    out = tmp_path / "voc"
    with voc_project.open() as project:
        report = export_project(project, "voc", out, ExportOptions(void_band=3))
    rel = "coffee.jpg"
    written = np.array(Image.open(out / VOC_BASE / "SegmentationClass" / f"{report.names[rel]}.png"))
    assert np.array_equal(written, add_void_band(voc_project.masks[rel], 3))
    assert (written == UNLABELED).sum() > (voc_project.masks[rel] == UNLABELED).sum()


def test_exif_rotated_jpeg_is_written_upright(tmp_path):
    from segstudio.core.project import Project, Status

    image_dir = tmp_path / "images"
    image_dir.mkdir()
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[:, :30] = (255, 0, 0)
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90: the app shows it 60 high, 40 wide
    img.save(image_dir / "rotated.jpg", exif=exif.tobytes(), quality=95)
    with Project.open(image_dir) as project:
        rec = project.images()[0]
        assert rec.shape == (60, 40)
        project.save_mask(rec, np.zeros((60, 40), dtype=np.uint8), status=Status.DONE)
        export_project(project, "voc", tmp_path / "voc", ExportOptions(split="train"))
    dataset = VOCSegmentation(str(tmp_path / "voc"), year="2012", image_set="train")
    image, target = dataset[0]
    assert image.size == target.size == (40, 60)
    upright = np.asarray(image)
    assert (
        upright[:25, :, 0].mean() > 200 and upright[35:, :, 0].mean() < 60
    )  # red half on top after rotation


@pytest.mark.parametrize("include, expected", [("done", 3), ("mask", 4)])
def test_include_option(tmp_path, include, expected, photo_project_factory):
    from segstudio.core.project import Status
    from segstudio.core.schemes import voc_scheme

    proj = photo_project_factory(
        tmp_path, voc_scheme(), [0, 15, 7], scale=0.2, statuses={"coffee.jpg": Status.IN_PROGRESS}
    )
    with proj.open() as project:
        report = export_project(
            project, "voc", tmp_path / "out", ExportOptions(include=include, split="train")
        )
    assert report.exported == expected
    assert ("coffee.jpg" in report.names) == (include == "mask")


def test_custom_scheme_exports_its_indices_with_the_voc_palette_and_names(tmp_path, photo_project_factory):
    """A custom scheme keeps its own indices (not VOC's), the VOC palette, and its names; re-import restores it."""
    from segstudio.core.project import Project
    from segstudio.core.schemes import ClassDef, LabelScheme
    from segstudio.export.import_common import run_import
    from segstudio.export.voc_import import preview_voc

    scheme = LabelScheme(
        "weeds",
        (
            ClassDef("soil", (120, 80, 40)),
            ClassDef("crop", (0, 255, 0)),
            ClassDef("weed", (255, 0, 255)),
            ClassDef("stone", (90, 90, 90)),
        ),
    )
    proj = photo_project_factory(tmp_path, scheme, [0, 1, 2, 3], scale=0.25)
    out = tmp_path / "voc"
    with proj.open() as project:
        report = export_project(project, "voc", out)
    by_name = {report.names[rel]: rel for rel in proj.masks}
    dataset = VOCSegmentation(str(out), year="2012", image_set="trainval")
    assert len(dataset) == len(proj.masks)
    for index in range(len(dataset)):
        _, target = dataset[index]
        mask = proj.masks[by_name[Path(dataset.images[index]).stem]]
        assert set(np.unique(mask).tolist()) == {0, 1, 2, 3, 255}
        assert np.array_equal(np.array(target), mask)
        palette = np.array(target.getpalette()[: 256 * 3], dtype=np.uint8).reshape(256, 3)
        assert np.array_equal(palette, voc_colormap(256))
    assert (out / VOC_BASE / "class_names.txt").read_text().splitlines() == ["soil", "crop", "weed", "stone"]
    plan = preview_voc(out)
    assert plan.scheme == scheme  # colours and names come back from the export
    with Project.open(run_import(plan, tmp_path / "back")) as project:
        assert project.scheme == scheme
        for rel, name in report.names.items():
            assert np.array_equal(project.load_mask(project.get(f"{name}.jpg")), proj.masks[rel])


def _parse_labelmap(path: Path) -> dict[str, tuple[int, int, int]]:
    """Read labelmap.txt the way Datumaro's VOC reader does: 4 ':'-fields, 'r,g,b' colour."""
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        assert len(fields) == 4, line
        name, color = fields[0], tuple(int(c) for c in fields[1].split(","))
        assert name not in table
        table[name] = color
    return table


def test_labelmap_declares_every_class_and_void_with_the_mask_palette(photo_project_factory, tmp_path):
    from segstudio.core.schemes import ClassDef, LabelScheme

    scheme = LabelScheme(
        "street",
        (
            ClassDef("road", (128, 64, 128)),
            ClassDef("sky", (70, 130, 180)),
            ClassDef("car", (0, 0, 142)),
            ClassDef("tree", (0, 200, 0)),
        ),
    )
    built = photo_project_factory(tmp_path, scheme, [0, 1, 2, 3], photos=["coffee.jpg", "astronaut.jpg"])
    out = tmp_path / "voc"
    with built.open() as project:
        report = export_project(project, "voc", out, ExportOptions(split="train"))
    path = out / VOC_BASE / "labelmap.txt"
    assert path.read_text().splitlines()[0] == "# label:color_rgb:parts:actions"
    table = _parse_labelmap(path)
    assert list(table) == ["road", "sky", "car", "tree", "ignored"]
    # every colour a reader sees in a mask maps back to exactly the class the project painted
    by_color = {color: name for name, color in table.items()}
    for rel, mask in built.masks.items():
        with Image.open(out / VOC_BASE / "SegmentationClass" / f"{report.names[rel]}.png") as img:
            rgb = np.asarray(img.convert("RGB"))
        for value in np.unique(mask):
            colors = {tuple(c) for c in rgb[mask == value].reshape(-1, 3)}
            assert len(colors) == 1
            expected = "ignored" if value == UNLABELED else scheme.names[value]
            assert by_color[colors.pop()] == expected
