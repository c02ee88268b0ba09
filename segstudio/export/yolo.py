"""Ultralytics YOLO segmentation layout: polygons traced from the masks.

    images/<split>/<name>.<jpg|png>     the source file (JPEG/PNG bytes kept; others encoded as PNG)
    labels/<split>/<stem>.txt           "<class> x1 y1 x2 y2 ..." per region, normalised to 0-1
    data.yaml                           train/val image folders, nc, names {index: name}

Class ids are the scheme's mask indices and every class is listed in `names`, so ids match the
project. Each connected region of a class becomes one polygon, holes bridged into it
(`yolo_polygons`); rasterised back the way Ultralytics does, the polygons reproduce the masks to
within a few boundary pixels (tests/export/test_yolo.py states the tolerance). Classes named
'background' (or '_background_') get no polygons: YOLO treats unlabelled pixels as background, and
one image-sized 'background' instance would only teach the detector to find the whole image.
Void (255) pixels are simply not covered. `data.yaml` has no `path:` key, so Ultralytics takes the
folder of the yaml file as the dataset root wherever the export is moved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from segstudio.core.atomic import atomic_write_text
from segstudio.export.common import ExportItem, image_format_of, source_image_bytes
from segstudio.export.engine import DatasetFormat, ItemResult
from segstudio.export.mask_folder import stem_unique_names
from segstudio.export.yolo_polygons import mask_to_yolo_lines

__all__ = ["BACKGROUND_NAMES", "YoloFormat"]

BACKGROUND_NAMES = frozenset({"background", "_background_"})


class YoloFormat(DatasetFormat):
    name = "yolo"
    version = 1
    disposable = ("labels/*.cache",)  # Ultralytics writes labels/<split>.cache on first read

    def options_key(self) -> dict[str, object]:
        return {"jpeg_quality": self.options.jpeg_quality}

    def prepare_names(self, items: Sequence[ExportItem], previous: dict[str, str]) -> dict[str, str]:
        return stem_unique_names(items, previous)

    def traced_classes(self) -> list[int]:
        return [
            i for i, name in enumerate(self.scheme.names) if name.strip().casefold() not in BACKGROUND_NAMES
        ]

    def write_item(self, root: Path, item: ExportItem, name: str, mask: np.ndarray) -> ItemResult:
        image_rel = f"images/{item.split}/{name}"
        label_rel = f"labels/{item.split}/{PurePosixPath(name).stem}.txt"
        data = source_image_bytes(
            item.image_path, image_format_of(name), mask.shape, self.options.jpeg_quality
        )
        lines = mask_to_yolo_lines(mask, self.traced_classes())
        return ItemResult(
            [
                self.write_file(root, image_rel, data),
                self.write_file(root, label_rel, "".join(f"{line}\n" for line in lines).encode()),
            ]
        )

    def write_index(self, root: Path, entries: list[tuple[ExportItem, str, ItemResult]]) -> list[str]:
        splits = {item.split for item, _, _ in entries}
        val = (
            "images/val"
            if "val" in splits
            else "images/train  # no val images in this export: val reuses train"
        )
        names = "".join(
            f"  {i}: {json.dumps(n, ensure_ascii=False)}\n" for i, n in enumerate(self.scheme.names)
        )
        text = (
            f"# SegStudio export of scheme {json.dumps(self.scheme.name, ensure_ascii=False)} (Ultralytics YOLO segmentation)\n"
            "# no 'path:' key: the dataset root is this file's folder\n"
            f"train: images/{'train' if 'train' in splits else 'val'}\n"
            f"val: {val}\n"
            f"nc: {self.scheme.num_classes}\n"
            f"names:\n{names}"
        )
        atomic_write_text(root / "data.yaml", text)
        return ["data.yaml"]
