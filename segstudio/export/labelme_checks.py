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

from segstudio.core.errors import ExportError, ImageReadError
from segstudio.core.images import read_image_size_bytes
from segstudio.core.schemes import control_characters
from segstudio.export.claimed_size import checked_image_size

__all__ = ["check_shapes", "checked_size", "decode_base64"]


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
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_shapes(path: Path, shapes: list[Any], size: tuple[int, int] | None = None) -> None:
    """Every shape an object with a text label and finite x,y points (near the image, once its
    `size` is known); else ExportError."""
    height, width = size or (0, 0)
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
        for index, point in enumerate(points):
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
