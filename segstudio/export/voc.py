"""Pascal VOC 2012 segmentation layout, readable by `torchvision.datasets.VOCSegmentation`.

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg              source JPEG bytes, other formats encoded once
    VOCdevkit/VOC2012/SegmentationClass/<id>.png       8-bit palette PNG, VOC colormap, 255 = void
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    VOCdevkit/VOC2012/class_names.txt                  one class name per line, line i = index i
    VOCdevkit/VOC2012/labelmap.txt                     the class table CVAT / Datumaro read (see below)
    VOCdevkit/VOC2012/segstudio_scheme.json            the full scheme (colours), for re-import

Pixel values are the project's mask indices for every scheme (custom schemes included), always
drawn with the VOC palette so VOC tools show them as usual.

`labelmap.txt` (`# label:color_rgb:parts:actions`, then `name:r,g,b::` per class) is how CVAT and
Datumaro learn a non-VOC class list; without it they assume the 21 VOC classes. Its colours are the
*palette* colours of each index (not the scheme's display colours), because those readers map a
mask pixel's colour back to a label; void (255) is declared as Datumaro's own `ignored` label with
the VOC void colour 224,224,192, so no pixel has an undeclared colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segstudio.core.atomic import atomic_write_text
from segstudio.core.schemes import UNLABELED, LabelScheme, voc_colormap
from segstudio.export.common import (
    ExportItem,
    encode_palette_png,
    safe_name,
    source_image_bytes,
    stem_of,
    unique_names,
)
from segstudio.export.engine import DatasetFormat, ItemResult

__all__ = ["VOC_BASE", "VocFormat", "add_void_band", "labelmap_text"]

VOC_BASE = "VOCdevkit/VOC2012"
VOID_LABEL = "ignored"  # Datumaro's name for VOC's 255 (VocLabel.ignored)


def labelmap_text(scheme: LabelScheme) -> str:
    """The VOC `labelmap.txt` of a scheme: one `name:r,g,b::` line per class, palette colours, void last."""
    palette = voc_colormap(256)
    lines = ["# label:color_rgb:parts:actions"]
    for index, name in enumerate(scheme.names):
        lines.append(f"{name.replace(':', '_')}:{','.join(str(int(c)) for c in palette[index])}::")
    void = VOID_LABEL if VOID_LABEL not in {n.casefold() for n in scheme.names} else "_void_"
    lines.append(f"{void}:{','.join(str(int(c)) for c in palette[UNLABELED])}::")
    return "\n".join(lines) + "\n"


def add_void_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Paint `width` pixels of void (255) along every change of label, VOC style.

    A pixel becomes void when the (width+1)x(width+1) window anchored on it holds two different
    values, which gives a band exactly `width` pixels wide across a straight edge.
    """
    if width <= 0:
        return mask
    kernel = np.ones((width + 1, width + 1), dtype=np.uint8)
    band = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    out = mask.copy()
    out[band] = UNLABELED
    return out


class VocFormat(DatasetFormat):
    name = "voc"
    version = 1

    def options_key(self) -> dict[str, Any]:
        return {"void_band": self.options.void_band, "jpeg_quality": self.options.jpeg_quality}

    def prepare_names(self, items: Sequence[ExportItem], previous: dict[str, str]) -> dict[str, str]:
        return unique_names(((it.rel_path, safe_name(stem_of(it.rel_path))) for it in items), previous)

    def write_item(self, root: Path, item: ExportItem, name: str, mask: np.ndarray) -> ItemResult:
        image_rel = f"{VOC_BASE}/JPEGImages/{name}.jpg"
        mask_rel = f"{VOC_BASE}/SegmentationClass/{name}.png"
        data = source_image_bytes(item.image_path, "JPEG", mask.shape, self.options.jpeg_quality)
        self.write_file(root, image_rel, data)
        out_mask = add_void_band(mask, self.options.void_band)
        self.write_file(root, mask_rel, encode_palette_png(out_mask, voc_colormap(256)))
        return ItemResult([image_rel, mask_rel])

    def write_index(self, root: Path, entries: list[tuple[ExportItem, str, ItemResult]]) -> list[str]:
        sets = f"{VOC_BASE}/ImageSets/Segmentation"
        by_split: dict[str, list[str]] = {"train": [], "val": []}
        for item, name, _ in entries:
            by_split.setdefault(item.split, []).append(name)
        written = []
        for split, names in (
            ("train", by_split["train"]),
            ("val", by_split["val"]),
            ("trainval", by_split["train"] + by_split["val"]),
        ):
            rel = f"{sets}/{split}.txt"
            atomic_write_text(root / rel, "".join(f"{n}\n" for n in names))
            written.append(rel)
        names_rel = f"{VOC_BASE}/class_names.txt"
        atomic_write_text(root / names_rel, "".join(f"{n}\n" for n in self.scheme.names))
        labelmap_rel = f"{VOC_BASE}/labelmap.txt"
        atomic_write_text(root / labelmap_rel, labelmap_text(self.scheme))
        scheme_rel = f"{VOC_BASE}/segstudio_scheme.json"
        self.scheme.save(root / scheme_rel)
        return written + [names_rel, labelmap_rel, scheme_rel]
