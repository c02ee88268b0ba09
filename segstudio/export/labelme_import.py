"""A folder of labelme JSON files -> an ImportPlan (rasterised masks, class mapping).

Shapes are painted in file order, later shapes over earlier ones, on the background class (or
void when the scheme has no background), with Pillow: polygon / rectangle / circle (centre +
point on the rim) filled with their outline, line / linestrip as 10 px wide strokes, point as a
disc of radius 5, and `mask` shapes (a PNG of the shape's bounding box) pasted at their box.

labels.txt (in the folder or its parent, or given explicitly) follows labelme's conventions:
`__ignore__` -> void (255), `_background_` -> index 0, then one class per line. Without it the
classes are 'background' plus every label found, sorted. With an explicit scheme, labels map to
its classes by loose name ('potted plant' = 'pottedplant', 'tv/monitor' = 'tvmonitor').
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from segstudio.core.errors import ExportError, UnsafePathError
from segstudio.core.paths import contained_relative, resolve_inside
from segstudio.core.safe_json import load_json_file
from segstudio.core.schemes import UNLABELED, ClassDef, LabelScheme, control_characters, voc_colormap
from segstudio.export.import_common import ImportPlan, ImportSample, MappingRow, lookup_by_name
from segstudio.export.labelme_checks import check_shapes, checked_size, decode_base64, simplify_shapes

__all__ = ["preview_labelme", "read_labels_file", "scheme_from_labels", "shape_to_mask"]

IGNORE = "__ignore__"
BACKGROUND = "_background_"
LINE_WIDTH = 10
POINT_RADIUS = 5


def shape_to_mask(
    shape_type: str, points: list[list[float]], size: tuple[int, int], mask_data: str | None = None
) -> np.ndarray:
    """Boolean (H, W) area of one labelme shape; ExportError for an unknown shape type."""
    height, width = size
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [(float(x), float(y)) for x, y in points]
    kind = shape_type or "polygon"
    if not xy:
        return np.zeros(size, dtype=bool)
    if kind == "polygon":
        if len(xy) >= 3:
            draw.polygon(xy, outline=1, fill=1)
        else:
            draw.line(xy if len(xy) > 1 else xy * 2, fill=1, width=1)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = xy[0], xy[-1]
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    elif kind == "circle":
        (cx, cy), (px, py) = xy[0], xy[-1]
        r = math.hypot(px - cx, py - cy)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        draw.line(xy if len(xy) > 1 else xy * 2, fill=1, width=LINE_WIDTH)
    elif kind == "point":
        cx, cy = xy[0]
        draw.ellipse(
            [cx - POINT_RADIUS, cy - POINT_RADIUS, cx + POINT_RADIUS, cy + POINT_RADIUS], outline=1, fill=1
        )
    elif kind == "mask":
        if not mask_data:
            raise ExportError("a labelme 'mask' shape has no mask data; re-save the file with labelme")
        try:
            with Image.open(io.BytesIO(base64.b64decode(mask_data, validate=True))) as img:
                patch = np.asarray(img.convert("L")) > 0
        except Exception as error:
            raise ExportError(
                f"a labelme 'mask' shape has unreadable mask data ({type(error).__name__})"
            ) from None
        (x0, y0), (x1, y1) = xy[0], xy[-1]
        left, top = int(round(min(x0, x1))), int(round(min(y0, y1)))
        out = np.zeros(size, dtype=bool)
        h = max(0, min(patch.shape[0], height - top))
        w = max(0, min(patch.shape[1], width - left))
        out[top : top + h, left : left + w] = patch[:h, :w]
        return out
    else:
        raise ExportError(
            f"unsupported labelme shape type {shape_type!r}; supported: polygon, rectangle, circle, line, linestrip, point, mask"
        )
    return np.asarray(canvas, dtype=np.uint8) > 0


def read_labels_file(path: Path) -> list[str]:
    """One label per line ('\\n' only: other line breaks inside a name are refused as control characters)."""
    try:
        labels = [
            line.strip() for line in Path(path).read_text(encoding="utf-8-sig").split("\n") if line.strip()
        ]
    except (OSError, UnicodeError) as error:
        raise ExportError(f"cannot read {path}: {error}; save it as UTF-8 text, one label per line") from None
    for label in labels:
        if bad := control_characters(label):
            raise ExportError(f"{path}: label {label!r} contains control characters ({', '.join(bad)})")
    return labels


def scheme_from_labels(labels: list[str], name: str = "labelme") -> LabelScheme:
    """labels.txt order -> scheme ('__ignore__' dropped, '_background_' named 'background'), VOC colours."""
    names = ["background" if lab == BACKGROUND else lab for lab in labels if lab != IGNORE]
    if not names:
        raise ExportError("labels.txt lists no classes; add one class name per line")
    cmap = voc_colormap(len(names))
    return LabelScheme(name, tuple(ClassDef(n, tuple(int(c) for c in cmap[i])) for i, n in enumerate(names)))


def _load_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the labelme document, "") or (None, why it is not one)."""
    if not path.is_file():  # a FIFO or device named *.json would block the read forever
        return None, "not a regular file"
    try:
        data = load_json_file(path, ExportError)
    except ExportError as error:
        return None, str(error).removeprefix(f"{path} ").split(";")[0]
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        return None, "no 'shapes' list"
    return data, ""


def _find_labels_file(source: Path) -> Path | None:
    for folder in (source, source.parent):
        candidate = folder / "labels.txt"
        if candidate.is_file():
            return candidate
    return None


def preview_labelme(
    source: str | Path,
    scheme: LabelScheme | None = None,
    labels_file: str | Path | None = None,
    allow_outside: bool = False,
) -> ImportPlan:
    """Read every labelme JSON under `source` (nothing is written).

    An `imagePath` must stay inside `source` (`img.jpg`, `../images/img.jpg` from a subfolder);
    one that leaves it is refused with a warning (the embedded `imageData` is used when present,
    else the file is skipped), unless `allow_outside`.
    """
    source = Path(source).expanduser().absolute()
    if not source.is_dir():
        raise ExportError(f"{source} is not a folder; choose the folder that holds the labelme .json files")
    warnings: list[str] = []
    documents: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(source.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(source).parts):
            continue
        data, why = _load_json(path)
        if data is None:
            warnings.append(f"{path.relative_to(source)} is not a labelme file ({why}; skipped)")
            continue
        check_shapes(path, data["shapes"])  # objects with text labels, before anything reads them
        documents.append((path, data))
    found: list[str] = []
    for _, data in documents:
        for shape in data["shapes"]:
            label = str(shape.get("label", ""))
            if label not in found:
                found.append(label)

    labels_path = Path(labels_file) if labels_file else _find_labels_file(source)
    file_labels = read_labels_file(labels_path) if labels_path else None
    if scheme is None:
        if file_labels is not None:
            scheme = scheme_from_labels(file_labels)
        else:
            others = sorted(lab for lab in found if lab not in (IGNORE, BACKGROUND, "background"))
            scheme = scheme_from_labels([BACKGROUND] + others)
    mapping: dict[str, int | None] = {}
    rows: list[MappingRow] = []
    for label in (file_labels or []) + [lab for lab in found if lab not in (file_labels or [])]:
        if label in mapping:
            continue
        index = UNLABELED if label == IGNORE else lookup_by_name(scheme, label)
        mapping[label] = index
        note = "" if label in found else "(not used)"
        if file_labels is not None and label not in file_labels:
            note = "(not in labels.txt)"
        name = "void" if index == UNLABELED else (scheme.classes[index].name if index is not None else "")
        rows.append(MappingRow(label, index, name, note))
    background = lookup_by_name(scheme, BACKGROUND)
    fill = background if background is not None else UNLABELED

    samples = []
    used_names: set[str] = set()
    for path, data in documents:
        sample = _sample(
            source,
            path,
            data,
            allow_outside,
            warnings,
            lambda size, p=path, d=data: _mask_loader(p, d, mapping, fill, size),
        )
        if sample is None:
            continue
        if sample.rel_path.casefold() in used_names:
            warnings.append(f"{path.relative_to(source)} points at an image already imported (skipped)")
            continue
        used_names.add(sample.rel_path.casefold())
        samples.append(sample)
    return ImportPlan("labelme", source, scheme, rows, samples, warnings)


def _sample(
    source: Path, path: Path, data: dict[str, Any], allow_outside: bool, warnings: list[str], mask_loader
) -> ImportSample | None:
    """One JSON file's image: where to read it, where it goes in the project; None = skipped (warned)."""
    shown = path.relative_to(source).as_posix()
    rel_dir = PurePosixPath(path.parent.relative_to(source).as_posix())
    written = data.get("imagePath")
    image_data = data.get("imageData") or None
    image_path: Path | None = None
    name = path.with_suffix(".jpg").name
    if written:
        try:
            image_path = resolve_inside(source, written, base=rel_dir, allow_outside=allow_outside)
        except UnsafePathError as error:
            if not image_data:
                warnings.append(
                    f"{shown}: imagePath refused: {error} (skipped; pass --allow-outside if you trust it)"
                )
                return None
            warnings.append(f"{shown}: imagePath refused: {error} (used the image embedded in the file)")
        name = PurePosixPath(str(written).replace("\\", "/")).name
    if image_path is not None and not image_path.is_file():
        image_path = None
    if image_path is None and not image_data:
        warnings.append(f"{shown}: image {written!r} not found and no embedded data (skipped)")
        return None
    embedded = (
        decode_base64(image_data, path) if image_data else None
    )  # checked now, decoded again when copied
    size = checked_size(path, data, image_path, embedded if image_path is None else None)
    check_shapes(path, data["shapes"], size)
    simplify_shapes(path, data["shapes"], warnings)  # Pillow would take minutes on a 1M-point polygon
    try:
        rel = contained_relative(name, base=rel_dir).as_posix()
    except UnsafePathError as error:
        warnings.append(f"{shown}: image name refused: {error} (skipped)")
        return None
    return ImportSample(
        rel_path=rel,
        load_mask=mask_loader(size),
        image_path=image_path,
        image_bytes=(lambda d=image_data: decode_base64(d, path)) if image_data else None,
    )


def _mask_loader(
    path: Path, data: dict[str, Any], mapping: dict[str, int | None], fill: int, size: tuple[int, int]
):
    """Paint the shapes on a mask of the checked image `size` (the file's claim is never trusted)."""

    def load() -> np.ndarray:
        mask = np.full(size, fill, dtype=np.uint8)
        for shape in data["shapes"]:
            index = mapping.get(str(shape.get("label", "")))
            if index is None:
                continue
            try:
                area = shape_to_mask(
                    str(shape.get("shape_type") or "polygon"),
                    shape.get("points", []),
                    size,
                    shape.get("mask"),
                )
            except ExportError as error:
                raise ExportError(f"{path}: {error}") from None
            mask[area] = index
        return mask

    return load
