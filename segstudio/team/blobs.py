"""Masks, predictions and confidence maps as PNG bytes in the team database (the same PNGs a local
project keeps as files, so a pulled project is byte-for-byte what the server holds)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from segstudio.core.errors import MaskError
from segstudio.core.masks import encode_png_l

__all__ = ["decode_png", "encode_png"]


def encode_png(array: np.ndarray, what: str = "a mask") -> bytes:
    array = np.asarray(array)
    if array.ndim != 2 or array.dtype != np.uint8 or 0 in array.shape:
        raise MaskError(f"{what} must be a non-empty 2-D uint8 array, got {array.dtype} {array.shape}")
    return encode_png_l(np.ascontiguousarray(array))


def decode_png(data: bytes, shape: tuple[int, int] | None, what: str) -> np.ndarray:
    """A single-channel PNG from the server; a wrong size or format is a MaskError, never a crash."""
    try:
        with Image.open(io.BytesIO(bytes(data)), formats=("PNG",)) as img:
            if shape is not None and (img.size[1], img.size[0]) != tuple(shape[:2]):
                raise MaskError(
                    f"{what} is {img.size[0]}x{img.size[1]} but its image is {shape[1]}x{shape[0]}"
                )
            if img.mode not in ("L", "P"):
                raise MaskError(f"{what} has pixel format {img.mode!r}; expected single-channel 8-bit")
            return np.array(img, dtype=np.uint8)
    except MaskError:
        raise
    except Exception as error:
        raise MaskError(f"{what} on the team server is corrupt ({type(error).__name__}: {error})") from None
