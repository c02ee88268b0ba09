"""Image reading: any supported file becomes an RGB `uint8` array, or an `ImageReadError`.

Policies (so masks line up with what the user sees, and a bad file never crashes the app):

- **EXIF orientation is applied** (`ImageOps.exif_transpose`); `read_image_size` reports the
  size after rotation, so a portrait photo stored landscape-with-tag is H > W everywhere.
- **Alpha is composited on white** (RGBA, LA, palette with transparency): transparent regions
  look as they do in a browser or file viewer on a light background, rather than revealing
  whatever colour happens to be stored under alpha = 0.
- **Grayscale, palette, CMYK, YCbCr, 1-bit** images are converted to RGB by Pillow.
- **16-bit** single-channel images are scaled to 8 bits (0..65535 -> 0..255, rounding);
  32-bit integer images are kept if they fit 0..255, else scaled from 16 bits or their maximum;
  float images in 0..1 are scaled by 255, others clipped to 0..255.
- **Decompression bombs**: the pixel count in the header is checked against `max_pixels`
  before any pixel is decoded. Pillow's own process-wide `Image.MAX_IMAGE_PIXELS` guard is
  switched off when this module is imported, because it would override the per-call cap
  (a user who raises the cap must be able to open a 200-megapixel scan). Code that decodes
  untrusted images should do it through this module.
- Only the decoders for the formats in `IMAGE_EXTENSIONS` are allowed (no EPS/PSD/etc. plugins
  reachable through a misnamed file). Any failure raises `ImageReadError` whose `reason` is a
  short human-readable phrase; callers never see a raw Pillow exception.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segstudio.core.errors import ImageReadError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "is_image_file",
    "load_image",
    "read_image_size",
    "read_image_size_bytes",
]

#: File extensions (lower case) SegStudio lists as images in a folder.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
#: Default decompression-bomb cap: 150 megapixels (a 12k x 12k scan still opens).
DEFAULT_MAX_PIXELS = 150_000_000
#: Pillow decoders allowed to open a file, whatever its extension says.
_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP")
#: EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112

# Our per-call cap (checked from the header before decoding) replaces Pillow's global one.
Image.MAX_IMAGE_PIXELS = None
# Register just our decoders' plugins now (`Image.open(formats=...)` looks the names up, and calls the
# full `Image.init()` only for a name that is missing): importing all ~50 plugins costs ~0.1 s at start-up.
for _plugin in (
    "JpegImagePlugin",
    "MpoImagePlugin",
    "PngImagePlugin",
    "BmpImagePlugin",
    "TiffImagePlugin",
    "WebPImagePlugin",
):
    try:
        importlib.import_module(f"PIL.{_plugin}")
    except ImportError:  # a Pillow built without that codec: the format is left out below
        pass
_FORMATS = tuple(name for name in _FORMATS if name in Image.OPEN)


def is_image_file(name: str | os.PathLike[str]) -> bool:
    return os.path.splitext(os.fspath(name))[1].lower() in IMAGE_EXTENSIONS


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as error:
        raise ImageReadError(path, f"cannot access file ({error.strerror or error})") from None
    if not path.is_file():
        raise ImageReadError(path, "not a regular file")
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")


def _open(path: Path) -> Image.Image:
    """Open the header only; translate every failure into an ImageReadError."""
    _check_file(path)
    try:
        return Image.open(path, formats=_FORMATS)
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image, or a format SegStudio cannot read") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except Exception as error:
        raise ImageReadError(path, f"corrupt image header ({type(error).__name__})") from None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_METADATA = {b"eXIf", b"tEXt", b"zTXt", b"iTXt"}  # where Pillow finds EXIF or XMP orientation


def _png_metadata_after_pixels(path: Path) -> bool:
    """True when a PNG has EXIF or text chunks after its pixel data (or cannot be walked).

    Why: Pillow's PNG `getexif()` decodes the whole image first, in case such a chunk follows the
    pixels (~7 ms for a 960x720 photo: most of a first project open). Walking the chunk headers finds
    out in a fraction of that; only a PNG that really has late metadata is decoded for it."""
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != _PNG_SIGNATURE:
                return True
            seen_pixels = False
            while header := handle.read(8):
                if len(header) < 8:
                    return True
                length, kind = int.from_bytes(header[:4], "big"), header[4:]
                if kind == b"IEND":
                    return False
                seen_pixels = seen_pixels or kind == b"IDAT"
                if seen_pixels and kind in _PNG_METADATA:
                    return True
                handle.seek(length + 4, os.SEEK_CUR)  # data + CRC
    except OSError:
        return True
    return True  # no IEND: truncated; let Pillow decide


def _orientation(img: Image.Image, path: Path | None = None) -> int:
    try:
        if path is not None and img.format == "PNG" and not _png_metadata_after_pixels(path):
            exif = Image.Image.getexif(img)  # everything it can hold was in the header: no decode
        else:
            exif = img.getexif()
        value = exif.get(_EXIF_ORIENTATION, 1)
        return int(value) if isinstance(value, (int, np.integer)) else 1
    except Exception:
        return 1


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"invalid image size {width}x{height}")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            path,
            f"image too large: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (decompression-bomb guard; raise the image size limit in the settings to open it)",
        )


def read_image_size(path: str | os.PathLike[str], max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) as displayed (after EXIF orientation), reading the header only."""
    path = Path(path)
    with _open(path) as img:
        width, height = img.size
        _check_pixels(path, width, height, max_pixels)
        if _orientation(img, path) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
    return width, height


def read_image_size_bytes(data: bytes, label: str, max_pixels: int | None = None) -> tuple[int, int]:
    """`read_image_size` for an image held in memory (e.g. labelme's embedded `imageData`);
    `label` names it in the ImageReadError."""
    import io

    try:
        img = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        raise ImageReadError(label, "not an image, or a format SegStudio cannot read") from None
    except Exception as error:
        raise ImageReadError(label, f"corrupt image header ({type(error).__name__})") from None
    with img:
        width, height = img.size
        _check_pixels(Path(label), width, height, max_pixels)
        if _orientation(img) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
    return width, height


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 -> 255, 32896 -> 128)."""
    return ((np.clip(values, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = arr.astype(np.float64)
            scaled = arr * 255.0 if np.nanmax(arr, initial=0.0) <= 1.0 else arr
            gray = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
        elif mode.startswith("I;16"):
            gray = _scale_16bit(arr.astype(np.int64))
        else:  # 32-bit integers: already 8-bit range, 16-bit range, or stretched from their maximum
            wide = np.clip(arr.astype(np.int64), 0, None)
            top = int(wide.max(initial=0))
            if top <= 255:
                gray = wide.astype(np.uint8)
            elif top <= 65535:
                gray = _scale_16bit(wide)
            else:
                gray = ((wide * 255 + top // 2) // top).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if mode in ("L", "1") and "transparency" in img.info:
        has_alpha = True
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
    elif mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def load_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into an (H, W, 3) `uint8` RGB array; see the module docstring for policies."""
    path = Path(path)
    with _open(path) as img:
        _check_pixels(path, img.size[0], img.size[1], max_pixels)
        try:
            img.load()
        except MemoryError:
            raise ImageReadError(path, "not enough memory to decode this image") from None
        except Exception as error:
            message = str(error).lower()
            if "truncated" in message or isinstance(error, EOFError) or "broken" in message:
                reason = "file is truncated or corrupt"
            else:
                reason = f"cannot decode image data ({type(error).__name__}: {error})"
            raise ImageReadError(path, reason) from None
        try:
            oriented = ImageOps.exif_transpose(img)
        except Exception:
            oriented = img
        try:
            return _to_rgb(oriented if oriented is not None else img)
        except Exception as error:
            raise ImageReadError(
                path, f"unsupported pixel format {img.mode!r} ({type(error).__name__})"
            ) from None
