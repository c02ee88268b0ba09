"""An annotation file's claimed image size, checked against the real image header first.

labelme (`imageHeight`/`imageWidth`), COCO (`height`/`width`) and friends state the image size,
and a mask of that size is allocated when the file is rasterised. The claim comes from a
stranger, so it must be a positive whole number and match the header of the real image (read
without decoding pixels) before anything is allocated: a file claiming 30000x30000 must not cost
900 MB, nor 100000x100000 10 GB.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.core.errors import ExportError, ImageReadError
from segstudio.core.images import DEFAULT_MAX_PIXELS, read_image_size, read_image_size_bytes

__all__ = ["checked_image_size", "claimed_number"]


def claimed_number(value: object, where: str, field: str) -> int | None:
    """A claimed height/width: None when absent, else a positive int (ExportError otherwise)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ExportError(f"{where}: {field} must be a positive whole number of pixels, got {value!r}")
    return value


def _header_size(where: str, image_path: Path | None, image_bytes: bytes | None) -> tuple[int, int] | None:
    try:
        if image_path is not None:
            width, height = read_image_size(image_path, DEFAULT_MAX_PIXELS)
            return height, width
        if image_bytes is not None:
            width, height = read_image_size_bytes(
                image_bytes, f"{where} (embedded image)", DEFAULT_MAX_PIXELS
            )
            return height, width
    except ImageReadError as error:
        if "too large" in error.reason:
            raise ExportError(f"{where}: {error.reason}") from None
    return None


def checked_image_size(
    where: str,
    claimed: tuple[object, object],
    names: tuple[str, str],
    image_path: Path | None = None,
    image_bytes: bytes | None = None,
) -> tuple[int, int]:
    """(height, width) to rasterise at: the real header size, which the claim must equal.

    An image whose header cannot be read keeps the claimed size (within the pixel cap): the
    project records it as unreadable and imports it without a mask.
    """
    height, width = claimed_number(claimed[0], where, names[0]), claimed_number(claimed[1], where, names[1])
    real = _header_size(where, image_path, image_bytes)
    if real is not None:
        if (height, width) not in ((None, None), real):
            raise ExportError(
                f"{where}: {names[0]} x {names[1]} say {height}x{width} but the image is {real[0]}x{real[1]}; "
                "fix the numbers and import again"
            )
        return real
    if height is None or width is None:
        raise ExportError(f"{where}: {names[0]} and {names[1]} are missing and the image cannot be read")
    if height * width > DEFAULT_MAX_PIXELS:
        raise ExportError(f"{where}: the claimed size {height}x{width} exceeds {DEFAULT_MAX_PIXELS:,} pixels")
    return height, width
