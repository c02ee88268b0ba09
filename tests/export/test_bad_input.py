"""Bad labelme / Cityscapes / VOC input: a clear error naming the file (CLI exit 2, no traceback),
and a claimed image size is checked against the real header before anything is allocated."""

from __future__ import annotations

import base64
import io
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.errors import ExportError
from segstudio.export.labelme_import import preview_labelme
from segstudio.export.voc_import import preview_voc


def jpeg_bytes(size: tuple[int, int] = (24, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((*size, 3), 120, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height over a few bytes of data (a decompression bomb's shape)."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then length + type of IHDR
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


def doc(**overrides) -> dict:
    base = {
        "version": "5.4.1",
        "shapes": [{"label": "cat", "shape_type": "polygon", "points": [[1, 1], [20, 2], [10, 15]]}],
        "imagePath": "img.jpg",
        "imageData": None,
        "imageHeight": 24,
        "imageWidth": 32,
    }
    base.update(overrides)
    return base


BAD_DOCUMENTS = {
    "invalid base64": (doc(imagePath="gone.jpg", imageData="not base64 at all!!"), "not valid base64"),
    "base64 of a number": (doc(imagePath="gone.jpg", imageData=12), "imageData must be base64 text"),
    "point not a pair": (doc(shapes=[{"label": "cat", "points": [[1, 2, 3], [4, 5]]}]), "point 0"),
    "point is text": (doc(shapes=[{"label": "cat", "points": [["1", "2"]]}]), "point 0"),
    "point is a number": (doc(shapes=[{"label": "cat", "points": [7]}]), "point 0"),
    "points not a list": (doc(shapes=[{"label": "cat", "points": "1,2"}]), "points must be a list"),
    "shape not an object": (doc(shapes=["cat", 1]), "shape 0 is str"),
    "label not text": (doc(shapes=[{"label": ["cat"], "points": [[1, 1]]}]), "label must be text"),
    "negative height": (doc(imageHeight=-24), "imageHeight must be a positive"),
    "text width": (doc(imageWidth="32"), "imageWidth must be a positive"),
    "boolean width": (doc(imageWidth=True), "imageWidth must be a positive"),
    "float height": (doc(imageHeight=24.5), "imageHeight must be a positive"),
    "huge claim": (doc(imageHeight=30000, imageWidth=30000), "say 30000x30000 but the image is 24x32"),
    "nan point": (doc(shapes=[{"label": "cat", "points": [[float("nan"), 1], [2, 3]]}]), "finite numbers"),
    "infinite point": (doc(shapes=[{"label": "cat", "points": [[1e400, 1], [2, 3]]}]), "finite numbers"),
    "huge point": (doc(shapes=[{"label": "cat", "points": [[1e30, 1], [2, 3], [4, 4]]}]), "far outside"),
    "bad mask shape": (
        doc(shapes=[{"label": "cat", "shape_type": "mask", "points": [[0, 0], [3, 3]], "mask": "%%%"}]),
        "mask is not valid base64",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_bad_labelme_file_is_a_clear_cli_error(case, tmp_path, capsys):
    document, expected = BAD_DOCUMENTS[case]
    source = tmp_path / "src"
    source.mkdir()
    (source / "img.jpg").write_bytes(jpeg_bytes())
    (source / "bad.json").write_text(json.dumps(document))
    code = main(["import", "labelme", str(source), "--out", str(tmp_path / "proj"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "bad.json" in err and "Traceback" not in err
    assert not (tmp_path / "proj").exists()


def test_huge_claimed_size_is_refused_before_allocating(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    embedded = base64.b64encode(jpeg_bytes()).decode()
    (source / "a.json").write_text(
        json.dumps(doc(imagePath="gone.jpg", imageData=embedded, imageHeight=30000, imageWidth=30000))
    )
    (source / "b.json").write_text(
        json.dumps(doc(imagePath="broken.jpg", imageHeight=100000, imageWidth=100000))
    )
    (source / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    tracemalloc.start()
    try:
        for name in ("a.json", "b.json"):
            other = source / ("b.json" if name == "a.json" else "a.json")
            hidden = other.with_suffix(".off")
            other.rename(hidden)
            with pytest.raises(ExportError, match=name):
                preview_labelme(source)
            hidden.rename(other)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak  # 30000x30000 would be 900 MB


def test_labelme_mask_is_painted_at_the_real_size(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "img.jpg").write_bytes(jpeg_bytes())
    (source / "a.json").write_text(json.dumps(doc(imageHeight=None, imageWidth=None)))
    plan = preview_labelme(source)
    assert plan.samples[0].load_mask().shape == (24, 32)


def test_voc_mask_claiming_gigapixels_is_skipped_unread(tmp_path):
    root = tmp_path / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    for name in ("bomb", "wrong", "good"):
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(jpeg_bytes())
    (root / "SegmentationClass" / "bomb.png").write_bytes(png_claiming(100000, 100000))
    (root / "SegmentationClass" / "wrong.png").write_bytes(png_claiming(64, 64))
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(root / "SegmentationClass" / "good.png")
    tracemalloc.start()
    try:
        plan = preview_voc(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [s.rel_path for s in plan.samples] == ["good.jpg"]
    assert any("bomb" in w and "100000x100000" in w for w in plan.warnings)
    assert any("wrong" in w and "does not belong" in w for w in plan.warnings)
    assert peak < 50 * 2**20, peak


def test_cityscapes_manifest_field_of_wrong_type_via_cli(tmp_path, capsys):
    root = tmp_path / "cs"
    (root / "leftImg8bit" / "train" / "c").mkdir(parents=True)
    (root / "gtFine" / "train" / "c").mkdir(parents=True)
    (root / "segstudio_manifest.json").write_text(
        json.dumps({"dataset_format": "cityscapes", "items": [{"name": 1, "source": None}]})
    )
    code = main(["import", "cityscapes", str(root), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "segstudio_manifest.json" in err and "item 0" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["labels.txt", "class_names.txt", "label"])
def test_class_names_with_control_characters_are_refused_naming_the_file(where, tmp_path, capsys):
    if where == "class_names.txt":
        root = tmp_path / "VOC2012"
        (root / "JPEGImages").mkdir(parents=True)
        (root / "SegmentationClass").mkdir()
        (root / "class_names.txt").write_text("background\ncat\x00dog\n")
        argv = ["import", "voc", str(root), "--dry-run"]
    else:
        source = tmp_path / "src"
        source.mkdir()
        (source / "img.jpg").write_bytes(jpeg_bytes())
        label = "cat\u2028dog" if where == "label" else "cat"
        (source / "a.json").write_text(
            json.dumps(doc(shapes=[{"label": label, "points": [[1, 1], [5, 5], [1, 5]]}]))
        )
        if where == "labels.txt":
            (source / "labels.txt").write_text("_background_\ncat\x00\n")
        argv = ["import", "labelme", str(source), "--dry-run"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "control characters" in err and "Traceback" not in err
    assert (where if where != "label" else "a.json") in err


def test_mount_point_targets_are_refused_with_a_true_message(tmp_path, monkeypatch, voc_project):
    import os

    from segstudio.export.import_common import run_import
    from segstudio.export.project_export import export_project

    mounted = tmp_path / "usbstick"
    mounted.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mounted or real(p))
    with voc_project.open() as project, pytest.raises(ExportError, match="mount point"):
        export_project(project, "voc", mounted)
    source = tmp_path / "src"
    source.mkdir()
    (source / "img.jpg").write_bytes(jpeg_bytes())
    (source / "a.json").write_text(json.dumps(doc()))
    with pytest.raises(ExportError, match=r"mount point.*usbstick/usbstick"):
        run_import(preview_labelme(source), mounted)
    assert list(mounted.iterdir()) == []


def test_coco_claimed_sizes_are_checked_before_allocating(tmp_path):
    from segstudio.export.coco_import import preview_coco

    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "images" / "a.jpg").write_bytes(jpeg_bytes())
    rle = {"size": [100000, 100000], "counts": "0"}  # decoding would allocate 10 GB
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 100000, "width": 100000}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": rle}],
        "categories": [{"id": 1, "name": "cat"}],
    }
    path = root / "annotations" / "instances_train.json"
    path.write_text(json.dumps(data))
    tracemalloc.start()
    try:
        with pytest.raises(
            ExportError, match=r"instances_train\.json.*say 100000x100000 but the image is 24x32"
        ):
            preview_coco(root)
        data["images"][0].update(height=24, width=32)  # honest image size, hostile RLE size
        path.write_text(json.dumps(data))
        with pytest.raises(ExportError, match=r"a\.jpg.*RLE size \[100000, 100000\] does not match"):
            preview_coco(root)  # refused in the preview, before pycocotools allocates anything
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not (tmp_path / "project").exists()
    assert peak < 50 * 2**20, peak
