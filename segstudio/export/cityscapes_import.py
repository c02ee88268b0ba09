"""A Cityscapes folder (leftImg8bit/ + gtFine/) -> an ImportPlan.

Reads `*_gtFine_labelIds.png` of the train and val splits (test has no labels). By default the
project gets the 19-class Cityscapes training scheme (index = trainId; ids ignored in training
become void); with an explicit scheme, Cityscapes labels map by name. A SegStudio export's
manifest restores the original file names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segstudio.core.errors import ExportError, UnsafePathError
from segstudio.core.masks import load_mask
from segstudio.core.paths import contained_relative
from segstudio.core.schemes import CITYSCAPES_LABELS, UNLABELED, LabelScheme, cityscapes_scheme
from segstudio.export.import_common import ImportPlan, ImportSample, MappingRow, lookup_by_name
from segstudio.export.staging import MANIFEST_NAME

__all__ = ["preview_cityscapes"]


def _original_names(root: Path, warnings: list[str]) -> dict[str, str]:
    """Exported name -> original project path, from a SegStudio export's manifest (if any).

    A manifest that is not JSON or has fields of the wrong type is an ExportError naming it; a
    `source` that would land outside the new project is dropped with a warning (the image then
    keeps its Cityscapes name).
    """
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        raise ExportError(f"{path} is not a readable SegStudio manifest ({error}); delete it to import without it") from None
    if not isinstance(data, dict) or data.get("dataset_format") != "cityscapes":
        return {}
    items = data.get("items", [])
    if not isinstance(items, list):
        raise ExportError(f"{path}: 'items' must be a list, not {type(items).__name__}; fix or delete the manifest")
    names: dict[str, str] = {}
    for number, entry in enumerate(items):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("source"), str):
            raise ExportError(
                f"{path}: item {number} must be an object with text 'name' and 'source'; fix or delete the manifest"
            )
        try:
            rel = contained_relative(entry["source"])
            names[entry["name"]] = (rel.with_suffix(".png") if rel.suffix else rel.with_name(rel.name + ".png")).as_posix()
        except (UnsafePathError, ValueError) as error:
            warnings.append(f"{MANIFEST_NAME}: source of {entry['name']!r} refused: {error} (kept the Cityscapes name)")
    return names


def preview_cityscapes(source: str | Path, scheme: LabelScheme | None = None, allow_outside: bool = False) -> ImportPlan:
    """Read a Cityscapes folder (nothing is written). Images are found by listing the folders, so
    `allow_outside` changes nothing here; manifest names never leave the new project."""
    root = Path(source).expanduser().absolute()
    if not (root / "gtFine").is_dir() or not (root / "leftImg8bit").is_dir():
        raise ExportError(f"no Cityscapes data in {root}; choose the folder that contains leftImg8bit/ and gtFine/")
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
    originals = _original_names(root, warnings)
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
