"""A Pascal VOC segmentation folder -> an ImportPlan.

Accepts the VOC20xx folder itself, a VOCdevkit folder or its parent. Images listed in
ImageSets/Segmentation/{train,val}.txt (or, without lists, every SegmentationClass/*.png) are
imported with their split. The scheme comes from `segstudio_scheme.json` (SegStudio's own
exports), else `class_names.txt`, else the 21 VOC classes; with an explicit scheme the class
names map by loose name. Pixel values outside the classes (other than 255) are listed as unmapped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.errors import ExportError, SchemeError
from segstudio.core.masks import load_mask
from segstudio.core.schemes import VOC_CLASSES, ClassDef, LabelScheme, voc_colormap, voc_scheme
from segstudio.export.import_common import ImportPlan, ImportSample, map_values

__all__ = ["preview_voc", "find_voc_root"]


def find_voc_root(source: Path) -> Path:
    """The folder holding SegmentationClass/ (source itself, or VOCdevkit/VOC20xx below it)."""
    candidates = [source] + sorted(source.glob("VOC*")) + sorted(source.glob("VOCdevkit/VOC*"))
    for candidate in candidates:
        if (candidate / "SegmentationClass").is_dir():
            return candidate
    raise ExportError(
        f"no Pascal VOC segmentation data in {source}; choose the folder with SegmentationClass/ "
        "(e.g. VOCdevkit/VOC2012) or one of its parents"
    )


def _source_scheme(root: Path) -> LabelScheme:
    if (root / "segstudio_scheme.json").is_file():
        try:
            return LabelScheme.load(root / "segstudio_scheme.json")
        except SchemeError:
            pass
    names_file = root / "class_names.txt"
    if names_file.is_file():
        names = [n.strip() for n in names_file.read_text(encoding="utf-8").splitlines() if n.strip()]
        if tuple(names) == VOC_CLASSES:
            return voc_scheme()
        if names:
            cmap = voc_colormap(len(names))
            names = ["background" if n == "_background_" else n for n in names]
            return LabelScheme(root.name, tuple(ClassDef(n, tuple(int(c) for c in cmap[i])) for i, n in enumerate(names)))
    return voc_scheme()


def preview_voc(source: str | Path, scheme: LabelScheme | None = None) -> ImportPlan:
    source = Path(source).expanduser().absolute()
    root = find_voc_root(source)
    own = _source_scheme(root)
    target = scheme or own
    mapping = map_values(list(enumerate(own.names)), target, by_name=scheme is not None)
    lut = mapping.lut

    splits: dict[str, str | None] = {}
    warnings: list[str] = []
    sets = root / "ImageSets" / "Segmentation"
    for split in ("train", "val"):
        list_file = sets / f"{split}.txt"
        if list_file.is_file():
            for line in list_file.read_text(encoding="utf-8").splitlines():
                image_id = line.strip()
                if image_id and splits.setdefault(image_id, split) != split:
                    warnings.append(f"{image_id} is listed in both train.txt and val.txt; imported as train")
    if not splits:
        splits = {p.stem: None for p in sorted((root / "SegmentationClass").glob("*.png"))}
    samples: list[ImportSample] = []
    seen_values = np.zeros(256, dtype=bool)
    for image_id, split in splits.items():
        mask_path = root / "SegmentationClass" / f"{image_id}.png"
        image_path = root / "JPEGImages" / f"{image_id}.jpg"
        if not mask_path.is_file() or not image_path.is_file():
            warnings.append(f"{image_id}: image or mask missing (skipped)")
            continue
        values = np.unique(load_mask(mask_path))
        seen_values[values] = True
        samples.append(
            ImportSample(f"{image_id}.jpg", lambda p=mask_path: lut[load_mask(p)], image_path=image_path, split=split)
        )
    return ImportPlan("voc", root, target, mapping.rows + mapping.unknown_rows(seen_values), samples, warnings)
