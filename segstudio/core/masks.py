"""Mask and confidence files: single-channel 8-bit PNGs, written atomically.

A mask holds scheme indices (255 = unlabeled); a confidence map holds round(255 * max softmax
probability). Both are plain grayscale PNGs so any tool can read them; `save_palette_png` writes
the coloured 8-bit palette variant that VOC-style datasets use (pixel values are still indices).
Loading also accepts palette PNGs (their indices are the values), so VOC ground truth opens as is.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.errors import MaskError

__all__ = [
    "IMAGE_HASH_KEY",
    "encode_png_l",
    "load_confidence",
    "load_mask",
    "read_image_hash",
    "save_confidence",
    "save_mask",
    "save_palette_png",
]

#: PNG text key holding the content hash of the image a project mask belongs to: `segstudio repair`
#: re-attaches masks by it when the database's image rows are lost.
IMAGE_HASH_KEY = "segstudio:image-hash"

#: zlib level 1: masks compress well anyway, and saving runs on every edit.
_COMPRESS_LEVEL = 1


def _check_2d_uint8(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise MaskError(f"{what} must be a 2-D array (height, width), got shape {array.shape}")
    if array.dtype != np.uint8:
        raise MaskError(f"{what} must be uint8, got {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise MaskError(f"{what} is empty (shape {array.shape})")
    return np.ascontiguousarray(array)


def encode_png_l(array: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Encode a 2-D uint8 array as a grayscale PNG in memory (with `text` chunks, if any)."""
    buffer = io.BytesIO()
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    Image.fromarray(array).save(buffer, format="PNG", compress_level=_COMPRESS_LEVEL, pnginfo=info)
    return buffer.getvalue()


#: Largest mask loaded without a known image size (the default image pixel cap of core.images).
MAX_MASK_PIXELS = 150_000_000


def _check_header(path: Path, what: str, size: tuple[int, int], shape: tuple[int, int] | None) -> None:
    width, height = size
    if shape is not None and (height, width) != tuple(shape[:2]):
        raise MaskError(
            f"{what} {path} is {width}x{height} but its image is {shape[1]}x{shape[0]}; the mask does not belong to this image"
        )
    if shape is None and width * height > MAX_MASK_PIXELS:
        raise MaskError(
            f"{what} {path} claims {width}x{height} pixels, more than {MAX_MASK_PIXELS:,}; it is not a usable mask"
        )


def _load_single_channel(
    path: str | os.PathLike[str], what: str, shape: tuple[int, int] | None
) -> np.ndarray:
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO or device (a dataset can hold one) would block the read
        raise MaskError(f"{what} {path} is not a regular file")
    try:
        with Image.open(path, formats=("PNG",)) as img:
            _check_header(path, what, img.size, shape)  # before decoding: a header may claim gigapixels
            img.load()
            if img.mode not in ("L", "P"):
                raise MaskError(
                    f"{what} {path} has pixel format {img.mode!r}; expected a single-channel 8-bit PNG "
                    "(grayscale or palette) of class indices"
                )
            array = np.array(img, dtype=np.uint8)
    except MaskError:
        raise
    except FileNotFoundError:
        raise MaskError(f"{what} {path} does not exist") from None
    except UnidentifiedImageError:
        raise MaskError(f"{what} {path} is not a PNG file") from None
    except Exception as error:
        raise MaskError(f"{what} {path} is corrupt or truncated ({type(error).__name__}: {error})") from None
    return array


def save_mask(path: str | os.PathLike[str], mask: np.ndarray, image_hash: str | None = None) -> None:
    """Write a mask of class indices as a single-channel PNG (atomic); `image_hash` names its image."""
    text = {IMAGE_HASH_KEY: image_hash} if image_hash else None
    atomic_write_bytes(path, encode_png_l(_check_2d_uint8(mask, "a mask"), text))


def read_image_hash(path: str | os.PathLike[str]) -> str | None:
    """The image content hash a project mask was saved with (None: older mask, or not readable)."""
    try:
        with Image.open(path) as image:
            value = image.info.get(IMAGE_HASH_KEY)  # text before the pixels: nothing is decoded
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    return value if isinstance(value, str) else None


def load_mask(path: str | os.PathLike[str], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask (grayscale or palette PNG) as 2-D uint8; `shape` (h, w) is checked when given."""
    return _load_single_channel(path, "mask", shape)


def save_palette_png(path: str | os.PathLike[str], mask: np.ndarray, lut: np.ndarray) -> None:
    """Write an 8-bit palette PNG: pixel values are the indices, `lut` (256, 3) gives their colours."""
    mask = _check_2d_uint8(mask, "a mask")
    lut = np.asarray(lut)
    if lut.ndim != 2 or lut.shape[1] != 3 or lut.shape[0] > 256:
        raise MaskError(f"a colour table must have shape (<=256, 3), got {lut.shape}")
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: lut.shape[0]] = np.clip(lut, 0, 255).astype(np.uint8)
    img = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    img.putpalette(palette.reshape(-1).tolist())
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=_COMPRESS_LEVEL, optimize=False)
    atomic_write_bytes(path, buffer.getvalue())


def save_confidence(path: str | os.PathLike[str], confidence: np.ndarray) -> None:
    """Write a confidence map (uint8, 255 = certain) as a grayscale PNG (atomic)."""
    atomic_write_bytes(path, encode_png_l(_check_2d_uint8(confidence, "a confidence map")))


def load_confidence(path: str | os.PathLike[str], shape: tuple[int, int] | None = None) -> np.ndarray:
    return _load_single_channel(path, "confidence map", shape)
