"""A Cityscapes folder (leftImg8bit/ + gtFine/) -> an ImportPlan.

Reads `*_gtFine_labelIds.png` of the train and val splits (test has no labels). By default the
project gets the 19-class Cityscapes training scheme (index = trainId; ids ignored in training
become void); with an explicit scheme, Cityscapes labels map by name. A SegStudio export's
manifest restores the original file names.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from segstudio.core.errors import ExportError
from segstudio.core.masks import load_mask
from segstudio.core.schemes import CITYSCAPES_LABELS, UNLABELED, LabelScheme, cityscapes_scheme
from segstudio.export.import_common import (
    ImportPlan,
    ImportSample,
    MappingRow,
    lookup_by_name,
    original_names,
)

__all__ = ["preview_cityscapes"]


def _png(rel: str) -> str:
    path = PurePosixPath(rel)
    return (path.with_suffix(".png") if path.suffix else path.with_name(path.name + ".png")).as_posix()


def preview_cityscapes(
    source: str | Path, scheme: LabelScheme | None = None, allow_outside: bool = False
) -> ImportPlan:
    """Read a Cityscapes folder (nothing is written). Images are found by listing the folders, so
    `allow_outside` changes nothing here; manifest names never leave the new project."""
    root = Path(source).expanduser().absolute()
    if not (root / "gtFine").is_dir() or not (root / "leftImg8bit").is_dir():
        raise ExportError(
            f"no Cityscapes data in {root}; choose the folder that contains leftImg8bit/ and gtFine/"
        )
    target = scheme or cityscapes_scheme()
    lut = np.full(256, UNLABELED, dtype=np.uint8)
    rows = []
    for label in CITYSCAPES_LABELS:
        if label.id < 0:
            continue
        index = lookup_by_name(target, label.name)
        if index is None:
            rows.append(MappingRow(f"{label.id}: {label.name}", UNLABELED, "void", "(no such class)"))
            continue
        lut[label.id] = index
        rows.append(MappingRow(f"{label.id}: {label.name}", index, target.classes[index].name))
    samples: list[ImportSample] = []
    warnings: list[str] = []
    originals = {name: _png(rel) for name, rel in original_names(root, "cityscapes", warnings).items()}
    used: set[str] = set()
    for split in ("train", "val"):
        for gt in sorted((root / "gtFine" / split).glob("*/*_gtFine_labelIds.png")):
            base = gt.name[: -len("_gtFine_labelIds.png")]
            city = gt.parent.name
            image = root / "leftImg8bit" / split / city / f"{base}_leftImg8bit.png"
            if not image.is_file():
                warnings.append(f"{gt.relative_to(root)}: no matching leftImg8bit image (skipped)")
                continue
            rel = originals.get(base) or f"{city}/{base}_leftImg8bit.png"
            if rel.casefold() in used:
                warnings.append(f"{gt.relative_to(root)}: another image already imports as {rel} (skipped)")
                continue
            used.add(rel.casefold())
            samples.append(ImportSample(rel, lambda p=gt: lut[load_mask(p)], image_path=image, split=split))
    return ImportPlan("cityscapes", root, target, rows, samples, warnings)
