"""Validation of one labelme JSON before anything is decoded or allocated.

labelme files come from strangers and from many tool versions, so every field is checked and a
bad one is an `ExportError` naming the file and the field (the CLI exits 2, no traceback):
shapes that are not objects, points that are not finite x,y pairs or lie far outside the image,
image sizes that are not positive whole numbers, `imageData` that is not base64. The size the
file *claims* (`imageHeight` x `imageWidth`) must match the real image header (read without
decoding pixels), so a file claiming 30000x30000 never makes us allocate a 900-megapixel mask.
"""

from __future__ import annotations

import base64
import binascii
import math
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.errors import ExportError, ImageReadError
from segstudio.core.images import read_image_size_bytes
from segstudio.core.schemes import control_characters
from segstudio.export.claimed_size import checked_image_size

__all__ = [
    "MAX_FILE_POINTS",
    "MAX_SHAPE_POINTS",
    "check_shapes",
    "checked_size",
    "decode_base64",
    "simplify_shapes",
]

#: Points per polygon/line drawn as they are: Pillow fills 10 000 points in < 1 s (100 000 took 27 s)
MAX_SHAPE_POINTS = 10_000
#: Points per file at all (a 1M-point polygon took 425 s to import before these caps)
MAX_FILE_POINTS = 1_000_000
#: Largest tolerance (pixels) a simplification may use; beyond it the shape is refused
_MAX_TOLERANCE = 4.0


def decode_base64(text: object, path: Path, field: str = "imageData") -> bytes:
    """Strict base64 (whitespace allowed, as some writers wrap lines); ExportError otherwise."""
    if not isinstance(text, str):
        raise ExportError(
            f"{path}: {field} must be base64 text, not {type(text).__name__}; re-save the file with labelme"
        )
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ExportError(
            f"{path}: {field} is not valid base64; re-save the file with labelme or remove {field}"
        ) from None


def checked_size(
    path: Path, data: dict[str, Any], image_path: Path | None, image_bytes: bytes | None
) -> tuple[int, int]:
    """(height, width) of the image this file annotates, the claimed size checked against its header."""
    claimed = (data.get("imageHeight"), data.get("imageWidth"))
    return checked_image_size(str(path), claimed, ("imageHeight", "imageWidth"), image_path, image_bytes)


def _number(value: object) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer of 400 digits is valid JSON
        return False


def _plain_points(points: list[Any], size: tuple[int, int] | None) -> bool:
    """True when `points` is an (n, 2) list of int/float pairs, finite and near the image: checked
    with numpy at C speed (a 1M-point polygon); False sends the caller to the per-point loop,
    which names the first bad point."""
    if not points:
        return True
    try:
        table = np.array(points, dtype=object)
    except (ValueError, TypeError):
        return False
    if table.ndim != 2 or table.shape[1] != 2 or not set(map(type, table.ravel())) <= {int, float}:
        return False
    try:
        xy = table.astype(np.float64)
    except OverflowError:
        return False
    if not np.isfinite(xy).all():
        return False
    if size is None:
        return True
    height, width = size
    x, y = xy[:, 0], xy[:, 1]
    return bool(x.min() >= -width and x.max() <= 2 * width and y.min() >= -height and y.max() <= 2 * height)


def check_shapes(path: Path, shapes: list[Any], size: tuple[int, int] | None = None) -> None:
    """Every shape an object with a text label and finite x,y points (near the image, once its
    `size` is known); else ExportError."""
    height, width = size or (0, 0)
    total = 0
    for number, shape in enumerate(shapes):
        where = f"{path}: shape {number}"
        if not isinstance(shape, dict):
            raise ExportError(f"{where} is {type(shape).__name__}, not an object with label and points")
        if not isinstance(shape.get("label", ""), str):
            raise ExportError(f"{where}: label must be text, got {shape.get('label')!r}")
        if bad := control_characters(shape.get("label", "")):
            raise ExportError(
                f"{where}: label {shape['label']!r} contains control characters ({', '.join(bad)})"
            )
        if not isinstance(shape.get("shape_type") or "polygon", str):
            raise ExportError(f"{where}: shape_type must be text, got {shape.get('shape_type')!r}")
        points = shape.get("points", [])
        if not isinstance(points, list):
            raise ExportError(f"{where}: points must be a list of [x, y] pairs")
        total += len(points)
        if total > MAX_FILE_POINTS:
            raise ExportError(
                f"{path}: its shapes have more than {MAX_FILE_POINTS:,} points in all; no annotation needs so "
                "many: simplify the shapes (or split the file) and import again"
            )
        for index, point in enumerate([] if _plain_points(points, size) else points):
            if not isinstance(point, (list, tuple)) or len(point) != 2 or not all(map(_number, point)):
                raise ExportError(
                    f"{where}, point {index}: {point!r} is not an [x, y] pair of finite numbers"
                )
            x, y = point
            if size is not None and not (-width <= x <= 2 * width and -height <= y <= 2 * height):
                raise ExportError(
                    f"{where}, point {index}: ({x:g}, {y:g}) lies far outside the {width}x{height} image; fix the shape"
                )
        if size is not None and shape.get("shape_type") == "mask" and shape.get("mask") is not None:
            data = decode_base64(shape.get("mask"), path, f"shape {number} mask")
            try:
                w, h = read_image_size_bytes(data, f"{path} (shape {number} mask)", height * width)
            except ImageReadError as error:
                raise ExportError(str(error)) from None
            if h > height or w > width:
                raise ExportError(f"{where}: its mask is {w}x{h}, larger than the {width}x{height} image")


def _simplified(points: list[list[float]], closed: bool) -> tuple[list[list[float]], float] | None:
    """`points` reduced below MAX_SHAPE_POINTS by Douglas-Peucker (cv2.approxPolyDP) at the smallest
    tolerance from 0.25 px up to _MAX_TOLERANCE that gets there; None when none does."""
    import cv2
    import numpy as np

    curve = np.asarray(points, dtype=np.float32).reshape(-1, 1, 2)
    tolerance = 0.25
    while tolerance <= _MAX_TOLERANCE:
        reduced = cv2.approxPolyDP(curve, tolerance, closed)
        if len(reduced) <= MAX_SHAPE_POINTS:
            return reduced.reshape(-1, 2).astype(float).tolist(), tolerance
        tolerance *= 2
    return None


def simplify_shapes(path: Path, shapes: list[dict[str, Any]], warnings: list[str]) -> None:
    """Polygons and lines of more than MAX_SHAPE_POINTS points simplified in place (a warning says so),
    or refused when even a 4 px tolerance leaves too many (random points, not an outline)."""
    for number, shape in enumerate(shapes):
        points = shape.get("points", [])
        if len(points) <= MAX_SHAPE_POINTS:
            continue
        kind = shape.get("shape_type") or "polygon"
        if kind not in ("polygon", "line", "linestrip"):
            continue  # the other kinds use their first and last points only
        result = _simplified(points, closed=kind == "polygon")
        if result is None:
            raise ExportError(
                f"{path}: shape {number} has {len(points):,} points that do not follow an outline (more than "
                f"{MAX_SHAPE_POINTS:,} remain within {_MAX_TOLERANCE:g} px); simplify it in labelme and import again"
            )
        shape["points"], tolerance = result
        warnings.append(
            f"{path.name}: shape {number} ({shape.get('label')!r}) had {len(points):,} points; simplified to "
            f"{len(shape['points']):,} within {tolerance:g} px"
        )
