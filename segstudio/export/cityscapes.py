"""Cityscapes `gtFine` layout, readable by torchvision's `Cityscapes` and cityscapesScripts.

    leftImg8bit/<split>/<city>/<city>_<seq:06>_<frame:06>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png        8-bit label ids
                                                _gtFine_labelTrainIds.png   8-bit train ids (255 ignore)
                                                _gtFine_color.png           RGBA label colours
                                                _gtFine_instanceIds.png     16-bit, see below
                                                _gtFine_polygons.json       painted in order

Names: a city is the image's folder (relative to the project, '/' and anything but letters,
digits and '-' become '-', so never '_'; images at the top level use the project folder's
name). seq/frame count the images of a city in natural order (frame = index % 1e6). The manifest
(`segstudio_manifest.json`) records original path <-> exported name, and a re-export keeps names.

Instance ids: SegStudio masks have no instance annotation, so for classes with `hasInstances`
each 8-connected component becomes one instance, `labelId * 1000 + k` (k = 0, 1, ... in scan
order, as cityscapesScripts' json2instanceImg numbers them); components beyond the 1000th and
classes without instances keep their plain labelId.

Project classes map to Cityscapes labels by name (case-insensitive, '_' = ' '; 'background'
means 'unlabeled'); unlabeled pixels (255) get id 0 ('unlabeled').
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import ExportError
from segstudio.core.schemes import CITYSCAPES_LABELS, CityscapesLabel, LabelScheme, label_id_to_train_id
from segstudio.export.common import ExportItem, encode_png, safe_name, source_image_bytes
from segstudio.export.engine import DatasetFormat, ItemResult
from segstudio.export.polygons import mask_to_polygons

__all__ = ["CityscapesFormat", "city_name", "cityscapes_label_map", "instance_ids"]

_ALIASES = {"background": "unlabeled", "_background_": "unlabeled", "void": "unlabeled"}
_BY_ID: dict[int, CityscapesLabel] = {lab.id: lab for lab in CITYSCAPES_LABELS if lab.id >= 0}


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").casefold().split())


def cityscapes_label_map(scheme: LabelScheme) -> list[CityscapesLabel]:
    """The Cityscapes label of each scheme class, by name; ExportError listing every unmapped class."""
    by_name = {_norm(lab.name): lab for lab in CITYSCAPES_LABELS if lab.id >= 0}
    mapped, unmapped = [], []
    for cls in scheme.classes:
        key = _ALIASES.get(cls.name.strip().casefold(), cls.name)
        label = by_name.get(_norm(key))
        if label is None:
            unmapped.append(cls.name)
        mapped.append(label)
    if unmapped:
        raise ExportError(
            f"{len(unmapped)} class(es) of scheme {scheme.name!r} have no Cityscapes label: {', '.join(unmapped)}. "
            "Rename them to Cityscapes label names (e.g. road, car, person) or export as VOC or COCO instead"
        )
    return mapped  # type: ignore[return-value]


def city_name(rel_path: str, project_name: str) -> str:
    """The city an image goes to: its folder with every non [A-Za-z0-9-] run turned into '-'."""
    parent = PurePosixPath(rel_path.replace("\\", "/")).parent
    folder = "-".join(p for p in parent.parts if p not in ("", "."))
    return (
        safe_name((folder or project_name).replace(".", "-").replace("_", "-"), fallback="city").strip("-")
        or "city"
    )


def instance_ids(label_ids: np.ndarray) -> np.ndarray:
    """uint16 instance image (see the module docstring for the numbering)."""
    out = label_ids.astype(np.uint16)
    for label_id in np.unique(label_ids):
        label = _BY_ID.get(int(label_id))
        if label is None or not label.hasInstances:
            continue
        count, components = cv2.connectedComponents((label_ids == label_id).astype(np.uint8), connectivity=8)
        for k in range(1, min(count, 1001)):
            out[components == k] = int(label_id) * 1000 + (k - 1)
    return out


class CityscapesFormat(DatasetFormat):
    name = "cityscapes"
    version = 1

    def __init__(self, scheme: LabelScheme, options=None, project_name: str = "city") -> None:
        super().__init__(scheme, options)
        self.labels = cityscapes_label_map(scheme)
        self.project_name = project_name
        self.id_lut = np.zeros(256, dtype=np.uint8)  # unknown indices and 255 -> 0 'unlabeled'
        for index, label in enumerate(self.labels):
            self.id_lut[index] = label.id
        self.train_lut = label_id_to_train_id()
        self.color_lut = np.zeros((256, 4), dtype=np.uint8)
        self.color_lut[:, 3] = 255
        for label in CITYSCAPES_LABELS:
            if label.id >= 0:
                self.color_lut[label.id, :3] = label.color

    def options_key(self) -> dict[str, Any]:
        return {}

    def prepare_names(self, items: Sequence[ExportItem], previous: dict[str, str]) -> dict[str, str]:
        """'<city>_<seq:06>_<frame:06>' per image; names from a previous export are kept."""
        names: dict[str, str] = {}
        used: dict[str, set[int]] = {}
        for item in items:
            old = previous.get(item.rel_path)
            if old and old.count("_") == 2:
                city, seq, frame = old.split("_")
                if seq.isascii() and seq.isdigit() and frame.isascii() and frame.isdigit():  # not "²"
                    index = int(seq) * 1_000_000 + int(frame)
                    if index not in used.setdefault(city, set()):
                        used[city].add(index)
                        names[item.rel_path] = old
        for item in items:
            if item.rel_path in names:
                continue
            city = city_name(item.rel_path, self.project_name)
            taken = used.setdefault(city, set())
            index = max(taken) + 1 if taken else 0
            taken.add(index)
            names[item.rel_path] = f"{city}_{index // 1_000_000:06d}_{index % 1_000_000:06d}"
        return names

    def label_ids(self, mask: np.ndarray) -> np.ndarray:
        return self.id_lut[mask]

    def polygons_json(self, label_ids: np.ndarray) -> dict[str, Any]:
        objects = [
            {"label": _BY_ID[p.value].name, "polygon": [list(pt) for pt in p.points]}
            for p in mask_to_polygons(label_ids, background=0)
        ]
        return {"imgHeight": int(label_ids.shape[0]), "imgWidth": int(label_ids.shape[1]), "objects": objects}

    def write_item(self, root: Path, item: ExportItem, name: str, mask: np.ndarray) -> ItemResult:
        city = name.split("_", 1)[0]
        split = item.split
        image_rel = f"leftImg8bit/{split}/{city}/{name}_leftImg8bit.png"
        gt = f"gtFine/{split}/{city}/{name}_gtFine"
        label_ids = self.label_ids(mask)
        files = [
            self.write_file(root, image_rel, source_image_bytes(item.image_path, "PNG", mask.shape)),
            self.write_file(root, f"{gt}_labelIds.png", encode_png(label_ids)),
            self.write_file(root, f"{gt}_labelTrainIds.png", encode_png(self.train_lut[label_ids])),
            self.write_file(root, f"{gt}_color.png", encode_png(self.color_lut[label_ids], rgb_input=True)),
            self.write_file(root, f"{gt}_instanceIds.png", encode_png(instance_ids(label_ids))),
            self.write_file(
                root,
                f"{gt}_polygons.json",
                json.dumps(self.polygons_json(label_ids), separators=(",", ":")).encode(),
            ),
        ]
        return ItemResult(files)

    def write_index(self, root: Path, entries: list[tuple[ExportItem, str, ItemResult]]) -> list[str]:
        return []

    def manifest_extra(self) -> dict[str, Any]:
        return {
            "class_map": [
                {
                    "index": i,
                    "name": cls.name,
                    "cityscapes": lab.name,
                    "labelId": lab.id,
                    "trainId": lab.trainId,
                }
                for i, (cls, lab) in enumerate(zip(self.scheme.classes, self.labels))
            ]
        }
