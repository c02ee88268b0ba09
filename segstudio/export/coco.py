"""COCO stuff-style semantic annotations: one RLE annotation per (image, class present).

    images/<split>/<name>.<ext>           the source file (JPEG/PNG kept as is; others encoded as JPEG)
    annotations/instances_<split>.json    {"images", "annotations", "categories", "info"}

This is the layout Datumaro and CVAT detect unchanged: annotation files named
`instances_<split>.json`, and each image's `file_name` relative to that split's image folder
(`images/<split>/`), so `images/<split>/<file_name>` is the image.

Category ids are mask index + 1 (COCO reserves 0); every scheme class is listed. Each annotation
has pycocotools' compressed RLE (`counts` as an ASCII string, `size` [h, w]), its `area` (pixel
count), `bbox` ([x, y, w, h] from pycocotools), `iscrowd` 0. Unlabeled pixels get no annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from segstudio.core.atomic import atomic_write_json
from segstudio.export.common import (
    SPLITS,
    ExportItem,
    image_format_of,
    kept_image_name,
    source_image_bytes,
    unique_names,
)
from segstudio.export.engine import DatasetFormat, ItemResult

__all__ = ["CocoFormat", "annotation_file"]


def annotation_file(split: str) -> str:
    """Where a split's annotations go, relative to the export root (the name Datumaro/CVAT look for)."""
    return f"annotations/instances_{split}.json"


class CocoFormat(DatasetFormat):
    name = "coco"
    version = 2  # 2: file_name relative to images/<split>/, instances_<split>.json

    def options_key(self) -> dict[str, Any]:
        return {"jpeg_quality": self.options.jpeg_quality}

    def prepare_names(self, items: Sequence[ExportItem], previous: dict[str, str]) -> dict[str, str]:
        return unique_names(((it.rel_path, kept_image_name(it.rel_path)) for it in items), previous)

    def write_item(self, root: Path, item: ExportItem, name: str, mask: np.ndarray) -> ItemResult:
        image_format = image_format_of(name)
        image_rel = f"images/{item.split}/{name}"
        self.write_file(
            root,
            image_rel,
            source_image_bytes(item.image_path, image_format, mask.shape, self.options.jpeg_quality),
        )
        annotations = []
        for index in np.unique(mask):
            if int(index) >= self.scheme.num_classes:
                continue  # unknown indices are reported by the pre-export check, never invented classes
            rle = mask_utils.encode(np.asfortranarray((mask == index).astype(np.uint8)))
            annotations.append(
                {
                    "category_id": int(index) + 1,
                    "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
                    "area": int(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
        record = {
            "image": {"file_name": name, "height": int(mask.shape[0]), "width": int(mask.shape[1])},
            "annotations": annotations,
        }
        return ItemResult([image_rel], record)

    def categories(self) -> list[dict[str, Any]]:
        return [
            {"id": i + 1, "name": cls.name, "supercategory": "", "color": list(cls.color)}
            for i, cls in enumerate(self.scheme.classes)
        ]

    def write_index(self, root: Path, entries: list[tuple[ExportItem, str, ItemResult]]) -> list[str]:
        written = []
        next_ann = 1
        for split in SPLITS:
            images, annotations = [], []
            for image_id, (item, _, result) in enumerate(
                (e for e in entries if e[0].split == split), start=1
            ):
                record = result.record
                images.append({"id": image_id, **record["image"], "segstudio_source": item.rel_path})
                for ann in record["annotations"]:
                    annotations.append({"id": next_ann, "image_id": image_id, **ann})
                    next_ann += 1
            rel = annotation_file(split)
            atomic_write_json(
                root / rel,
                {
                    "info": {
                        "description": f"SegStudio export ({self.scheme.name})",
                        "version": str(self.version),
                    },
                    "images": images,
                    "annotations": annotations,
                    "categories": self.categories(),
                },
                indent=None,
            )
            written.append(rel)
        return written
