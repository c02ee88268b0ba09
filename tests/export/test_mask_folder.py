"""Mask PNG folder: the real CamVid sample imported, exports read by a torchvision-style loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ExportError, UnsafePathError
from segstudio.core.project import Project, Status
from segstudio.core.schemes import ClassDef, LabelScheme
from segstudio.export.common import ExportOptions
from segstudio.export.import_common import run_import
from segstudio.export.mask_folder_import import preview_mask_folder
from segstudio.export.project_export import export_project


def _sample_masks(camvid_sample: Path) -> dict[str, np.ndarray]:
    return {
        p.with_suffix(".png").name: np.array(Image.open(p))
        for p in sorted((camvid_sample / "masks").glob("*.png"))
    }


def test_import_of_the_camvid_sample_keeps_every_mask_and_the_class_table(camvid_sample, camvid_project):
    expected = _sample_masks(camvid_sample)
    assert len(expected) == 24
    with Project.open(camvid_project) as project:
        assert project.scheme == LabelScheme.load(camvid_sample / "scheme.json")
        records = project.images()
        assert sorted(r.rel_path for r in records) == sorted(expected)
        for rec in records:
            assert rec.status == Status.DONE
            assert np.array_equal(project.load_mask(rec), expected[rec.rel_path])
    assert (camvid_project / "0001TP_006690.png").read_bytes() == (
        camvid_sample / "images" / "0001TP_006690.png"
    ).read_bytes()


class FolderSegmentation:
    """What a torchvision user writes for `images/` + `masks/` (torchvision.io decoders, no SegStudio code)."""

    def __init__(self, root: Path, split: str) -> None:
        from torchvision.io import ImageReadMode, decode_image

        self.decode, self.mode = decode_image, ImageReadMode
        self.root = root
        self.names = (root / f"{split}.txt").read_text().split()

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        name = self.names[index]
        image_path = next((self.root / "images").glob(f"{name}.*"))
        image = self.decode(str(image_path), mode=self.mode.RGB)
        target = self.decode(str(self.root / "masks" / f"{name}.png"), mode=self.mode.UNCHANGED)
        return image, target


def test_torchvision_style_loader_reads_the_export_exactly(camvid_project, camvid_sample, tmp_path):
    out = tmp_path / "masks"
    with Project.open(camvid_project) as project:
        splits = {r.rel_path: r.split for r in project.images()}
        report = export_project(project, "masks", out, ExportOptions(color_masks=True))
        scheme = project.scheme
    expected = _sample_masks(camvid_sample)
    by_name = {Path(report.names[rel]).stem: rel for rel in expected}
    seen = set()
    for split in ("train", "val"):
        dataset = FolderSegmentation(out, split)
        assert len(dataset) == sum(1 for s in splits.values() if s == split)
        for index in range(len(dataset)):
            image, target = dataset[index]
            rel = by_name[dataset.names[index]]
            seen.add(rel)
            assert target.shape[0] == 1 and str(target.dtype) == "torch.uint8"
            assert np.array_equal(target[0].numpy(), expected[rel])
            assert tuple(image.shape) == (3, *expected[rel].shape)
            colors = np.array(Image.open(out / "colors" / f"{dataset.names[index]}.png").convert("RGB"))
            assert np.array_equal(colors, scheme.lut()[expected[rel]])
    assert seen == set(expected)
    assert (out / "classes.txt").read_text().splitlines() == scheme.names
    assert LabelScheme.load(out / "scheme.json") == scheme


def test_round_trip_maps_classes_by_name_onto_another_scheme(voc_project, tmp_path):
    out = tmp_path / "masks"
    with voc_project.open() as project:
        export_project(project, "masks", out)
        source_scheme = project.scheme
    # same classes, reversed order and other spelling: values must follow the names
    reordered = LabelScheme(
        "mine", tuple(ClassDef(c.name.upper(), c.color) for c in reversed(source_scheme.classes))
    )
    plan = preview_mask_folder(out, scheme=reordered)
    assert not plan.unmapped
    target = run_import(plan, tmp_path / "project")
    n = source_scheme.num_classes
    with Project.open(target) as project:
        assert project.scheme == reordered
        assert len(project.images()) == len(voc_project.masks)
        for rec in project.images():
            original = voc_project.masks[rec.rel_path]
            expected = np.where(original == 255, 255, n - 1 - original.astype(np.int16)).astype(np.uint8)
            assert np.array_equal(project.load_mask(rec), expected)


def test_incremental_reexport_and_unnamed_values_are_listed(voc_project, tmp_path):
    out = tmp_path / "masks"
    with voc_project.open() as project:
        export_project(project, "masks", out)
        report = export_project(project, "masks", out)
    assert (report.written, report.reused) == (0, len(voc_project.masks))
    # a folder whose class table names fewer classes than its masks use
    (out / "scheme.json").unlink()
    (out / "classes.txt").write_text("background\naeroplane\n")
    plan = preview_mask_folder(out)
    assert {r.source for r in plan.mapping if r.target_index is None} >= {
        "15: (no class name)",
        "7: (no class name)",
    }
    with pytest.raises(ExportError, match="no class in scheme"):
        run_import(plan, tmp_path / "refused")


def test_list_entries_cannot_leave_the_folder(voc_project, tmp_path):
    out = tmp_path / "masks"
    with voc_project.open() as project:
        export_project(project, "masks", out)
    (out / "train.txt").write_text("../../../../etc/passwd\n")
    with pytest.raises(UnsafePathError, match="climbs out"):
        preview_mask_folder(out)
    (out / "train.txt").write_text("/etc/passwd\n")
    with pytest.raises(UnsafePathError, match="absolute"):
        preview_mask_folder(out)


def test_masks_named_with_a_usual_ending_pair_with_their_image(camvid_sample, tmp_path):
    source = tmp_path / "ends"
    (source / "images").mkdir(parents=True)
    (source / "labels").mkdir()
    for path in sorted((camvid_sample / "images").glob("*.png"))[:3]:
        (source / "images" / path.name).write_bytes(path.read_bytes())
        (source / "labels" / f"{path.stem}_mask.png").write_bytes(
            (camvid_sample / "masks" / path.name).read_bytes()
        )
    (source / "classes.txt").write_text(
        "".join(f"{c.name}\n" for c in LabelScheme.load(camvid_sample / "scheme.json").classes)
    )
    plan = preview_mask_folder(source)
    assert sorted(s.rel_path for s in plan.samples) == sorted(p.name for p in (source / "images").iterdir())
    assert not plan.warnings and not plan.unmapped
    sample = plan.samples[0]
    assert np.array_equal(sample.load_mask(), np.array(Image.open(camvid_sample / "masks" / sample.rel_path)))


def test_colour_masks_are_read_through_the_class_colours(camvid_sample, tmp_path):
    """The sample's masks painted in its scheme colours (void in VOC's void colour) import as the same indices."""
    scheme = LabelScheme.load(camvid_sample / "scheme.json")
    source = tmp_path / "colour"
    (source / "images").mkdir(parents=True)
    (source / "masks").mkdir()
    (source / "scheme.json").write_bytes((camvid_sample / "scheme.json").read_bytes())
    expected = {}
    for path in sorted((camvid_sample / "masks").glob("*.png"))[:4]:
        mask = np.array(Image.open(path))
        expected[path.name] = mask
        Image.fromarray(scheme.lut()[mask]).save(source / "masks" / path.name)
        (source / "images" / path.name).write_bytes((camvid_sample / "images" / path.name).read_bytes())
    plan = preview_mask_folder(source)
    assert not plan.unmapped
    for sample in plan.samples:
        assert np.array_equal(sample.load_mask(), expected[sample.rel_path])
    stray = np.array(Image.open(source / "masks" / plan.samples[0].rel_path))
    stray[:5, :5] = (1, 2, 3)
    Image.fromarray(stray).save(source / "masks" / plan.samples[0].rel_path)
    plan = preview_mask_folder(source)
    assert plan.unmapped == ["colour 1,2,3"]
    with pytest.raises(ExportError, match="colour 1,2,3"):
        run_import(plan, tmp_path / "refused")
