"""Check that Datumaro (CVAT's dataset library) reads SegStudio exports as SegStudio wrote them.

Not a pytest test: Datumaro pins clash with SegStudio's (it wants Pillow 12 and OpenCV 4; we pin
Pillow 13 and OpenCV 5), so it runs in its own virtual environment. Steps (about 100 MB of wheels):

    python3 -m venv /tmp/dm && /tmp/dm/bin/pip install datumaro==1.13.0
    segstudio export PROJECT --format voc  --out /tmp/ex/voc  --include mask   # in SegStudio's env
    segstudio export PROJECT --format coco --out /tmp/ex/coco --include mask
    segstudio export PROJECT --format cityscapes --out /tmp/ex/cityscapes --include mask
    /tmp/dm/bin/python tests/external/datumaro_reads_exports.py /tmp/ex/voc /tmp/ex/coco /tmp/ex/cityscapes

For each folder it prints one JSON line: the format Datumaro detected, its label names, the number
of items per subset and, comparing Datumaro's masks with the export's own files (read with
Pillow here, independently of SegStudio: VOC's palette PNGs, COCO via pycocotools, Cityscapes'
labelTrainIds), how many pixels carry another class and which classes lost pixels. Exit status 1 when
a folder is not detected, labels differ from the export's class table, or any pixel disagrees.
Only Datumaro, numpy and Pillow are imported, so the script runs without SegStudio installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def _expected_voc(root: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    base = root / "VOCdevkit" / "VOC2012"
    names = base.joinpath("class_names.txt").read_text(encoding="utf-8").split("\n")
    masks = {p.stem: np.array(Image.open(p)) for p in (base / "SegmentationClass").glob("*.png")}
    return [n for n in names if n], masks


def _expected_coco(root: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    from pycocotools.coco import COCO  # installed with datumaro

    names, masks = [], {}
    for path in sorted((root / "annotations").glob("instances_*.json")):
        coco = COCO(str(path))
        names = [c["name"] for c in sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c["id"])]
        for image in coco.loadImgs(coco.getImgIds()):
            mask = np.full((image["height"], image["width"]), 255, dtype=np.uint8)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
                mask[coco.annToMask(ann).astype(bool)] = ann["category_id"] - 1
            masks[Path(image["file_name"]).stem] = mask
    return names, masks


#: Cityscapes' 19 training classes in trainId order (cityscapesScripts' helpers/labels.py)
CITYSCAPES_TRAIN = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
                    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")  # fmt: skip


def _expected_cityscapes(root: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    masks = {}
    for path in root.glob("gtFine/*/*/*_gtFine_labelTrainIds.png"):
        masks[path.name[: -len("_gtFine_labelTrainIds.png")]] = np.array(Image.open(path))
    return [n.replace(" ", "") for n in CITYSCAPES_TRAIN], masks


def _datumaro_masks(dataset, label_names: list[str], expected_names: list[str]) -> dict[str, np.ndarray]:
    """item id -> (H, W) uint8 of the export's class indices painted from Datumaro's mask annotations."""
    from datumaro.components.annotation import AnnotationType

    # the declared void label ("ignored") is void again; any other unknown label shows up as 254
    to_index = {i: (expected_names.index(n) if n in expected_names else 255 if n == "ignored" else 254) for i, n in enumerate(label_names)}
    out = {}
    for item in dataset:
        masks = [a for a in item.annotations if a.type in (AnnotationType.mask,)]
        if not masks:
            continue
        shape = masks[0].image.shape[:2]
        painted = np.full(shape, 255, dtype=np.uint8)
        for ann in sorted(masks, key=lambda a: getattr(a, "z_order", 0)):
            if ann.label is not None:
                painted[ann.image.astype(bool)] = to_index[ann.label]
        out[Path(item.id).name] = painted
    return out


def check(folder: Path) -> dict[str, object]:
    from datumaro.components.dataset import Dataset
    from datumaro.components.environment import Environment

    # Datumaro looks only a level or two deep: a VOC export is read from its VOCdevkit/VOC2012 folder
    # (torchvision wants the export root), as CVAT reads the content of a zipped VOC2012 folder.
    read_from = next((c for c in (folder, folder / "VOCdevkit" / "VOC2012") if Environment().detect_dataset(str(c))), folder)
    detected = Environment().detect_dataset(str(read_from))
    fmt = next((f for f in ("voc_segmentation", "voc", "coco_instances", "coco", "cityscapes") if f in detected), None)
    report: dict[str, object] = {"folder": str(folder), "read_from": str(read_from), "detected": detected, "format": fmt}
    if fmt is None:
        report["ok"] = False
        return report
    dataset = Dataset.import_from(str(read_from), fmt)
    from datumaro.components.annotation import AnnotationType

    labels = [c.name for c in dataset.categories()[AnnotationType.label]]
    report["labels"] = labels
    report["items"] = {name: len(subset) for name, subset in dataset.subsets().items()}
    if fmt.startswith("voc"):
        expected_names, expected = _expected_voc(folder)
    elif fmt.startswith("coco"):
        expected_names, expected = _expected_coco(folder)
    else:
        expected_names, expected = _expected_cityscapes(folder)
        labels = [n.replace(" ", "") for n in labels]
    got = _datumaro_masks(dataset, labels, expected_names)
    lost = sorted({expected_names[v] for k, m in expected.items() if k in got for v in np.unique(m[got[k] != m]) if v < 255})
    report["classes_with_lost_pixels"] = lost
    wrong = sum(int((got[k] != m).sum()) for k, m in expected.items() if k in got)
    report["labels_match"] = [n for n in labels if n not in ("ignored", "background")] == expected_names
    report["missing_items"] = sorted(set(expected) - set(got))
    report["pixels_differing"] = wrong
    report["ok"] = report["labels_match"] and not report["missing_items"] and wrong == 0
    return report


def main(folders: list[str]) -> int:
    ok = True
    for folder in folders:
        report = check(Path(folder))
        ok = ok and bool(report["ok"])
        print(json.dumps(report, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
