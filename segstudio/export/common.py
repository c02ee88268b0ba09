"""What every exporter shares: the items to export, the options, names, and image/PNG encoding.

An `ExportItem` is deliberately not a project record: the format writers only need a path, a
split, a content hash and a way to load the mask, so they are tested on plain arrays and folders
and the project is only one source of items (`items_from_project`).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
from PIL import Image

from segstudio.core.errors import ExportError
from segstudio.core.hashing import stable_fraction
from segstudio.core.images import load_image

__all__ = [
    "SPLITS",
    "ExportItem",
    "ExportOptions",
    "assign_split",
    "encode_jpeg",
    "encode_palette_png",
    "encode_png",
    "image_needs_reencode",
    "kept_image_name",
    "mask_digest",
    "parse_split",
    "safe_name",
    "source_image_bytes",
    "unique_names",
]

SPLITS: tuple[str, ...] = ("train", "val")
_SAFE = re.compile(r"[^A-Za-z0-9._\-]+")


@dataclass(frozen=True)
class ExportItem:
    """One image to export: where it is, which split it goes to, and how to get its mask."""

    rel_path: str
    image_path: Path
    split: str
    load_mask: Callable[[], np.ndarray | None] = field(repr=False, compare=False)
    content_hash: str | None = None
    status: str = "done"


@dataclass(frozen=True)
class ExportOptions:
    """User choices shared by all formats.

    include: "done" (only images marked done, the default) or "mask" (every image with a mask).
    split: "project" (each image's split), "train"/"val" (everything in one split) or "random:F"
    (a deterministic fraction F to val, chosen by content hash so re-exports keep assignments).
    void_band: VOC only; width in pixels of a void (255) band painted along class boundaries.
    """

    include: str = "done"
    split: str = "project"
    void_band: int = 0
    jpeg_quality: int = 95
    color_masks: bool = False  # mask folder / CamVid: also write colour PNGs for people to look at

    def __post_init__(self) -> None:
        if self.include not in ("done", "mask"):
            raise ExportError(f"unknown include option {self.include!r}; choose 'done' or 'mask'")
        parse_split(self.split)
        if not isinstance(self.void_band, int) or self.void_band < 0:
            raise ExportError(f"void band {self.void_band!r} must be a whole number of pixels >= 0")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ExportError(f"JPEG quality {self.jpeg_quality} must be between 1 and 100")


def parse_split(text: str) -> tuple[str, float]:
    """Validate a split option; returns (mode, val_fraction)."""
    if text in ("project", "train", "val"):
        return text, 0.0
    if isinstance(text, str) and text.startswith("random:"):
        try:
            fraction = float(text.split(":", 1)[1])
        except ValueError:
            fraction = -1.0
        if 0.0 <= fraction <= 1.0:
            return "random", fraction
    raise ExportError(
        f"unknown split option {text!r}; use 'project', 'train', 'val' or 'random:F' with 0 <= F <= 1 (e.g. random:0.2)"
    )


def assign_split(option: str, project_split: str, key: str) -> str:
    """The split one image goes to under `option` (stable: the random split hashes `key`)."""
    mode, fraction = parse_split(option)
    if mode == "project":
        return project_split if project_split in SPLITS else "train"
    if mode in SPLITS:
        return mode
    return "val" if stable_fraction(key) < fraction else "train"


def safe_name(text: str, fallback: str = "image") -> str:
    """A file-name stem readers won't trip over: letters, digits, '.', '_', '-' (runs of others become '-')."""
    cleaned = _SAFE.sub("-", text).strip("-.")
    return cleaned or fallback


def unique_names(wanted: Iterable[tuple[str, str]], previous: dict[str, str] | None = None) -> dict[str, str]:
    """Map each key to its wanted name, suffixing '-2', '-3'... on clashes (case-insensitively).

    Names from `previous` (an earlier export of the same keys) are kept first so re-exports name
    every image the same way and incremental reuse finds them.
    """
    previous = previous or {}
    wanted = list(wanted)
    taken: set[str] = set()
    out: dict[str, str] = {}
    for key, _ in wanted:
        old = previous.get(key)
        if old is not None and old.casefold() not in taken:
            out[key] = old
            taken.add(old.casefold())
    for key, name in wanted:
        if key in out:
            continue
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{name}-{n}"
        out[key] = candidate
        taken.add(candidate.casefold())
    return out


def stem_of(rel_path: str) -> str:
    """rel_path without its extension, folders joined by '-' (so 'a/b.jpg' -> 'a-b')."""
    pure = PurePosixPath(rel_path.replace("\\", "/"))
    parts = list(pure.parent.parts) + [pure.stem]
    return "-".join(p for p in parts if p not in ("", "."))


# --------------------------------------------------------------------------------------------
# Images

#: source suffixes kept as they are (bytes copied); anything else is encoded once as `default`
_KEPT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


def kept_image_name(rel_path: str, default: str = ".jpg") -> str:
    """`safe stem + suffix` for an exported image: JPEG and PNG keep their suffix, others get `default`."""
    suffix = PurePosixPath(rel_path).suffix.lower()
    suffix = ".jpg" if suffix == ".jpeg" else suffix
    return safe_name(stem_of(rel_path)) + (suffix if suffix in _KEPT_FORMATS else default)


def image_format_of(name: str) -> str:
    """ "JPEG" or "PNG": the format an exported image name (from `kept_image_name`) is written in."""
    return _KEPT_FORMATS[PurePosixPath(name).suffix.lower()]


def image_needs_reencode(path: Path, expected_format: str, shape: tuple[int, int] | None) -> bool:
    """True unless the file is already `expected_format` ("JPEG"/"PNG"), upright, and mask-sized.

    Readers like torchvision ignore EXIF orientation while the project's masks follow it, so an
    image whose orientation tag rotates it must be re-encoded upright to stay aligned with its mask.
    """
    try:
        with Image.open(path) as img:
            if img.format != expected_format:
                return True
            orientation = img.getexif().get(0x0112, 1)
            if orientation not in (None, 1):
                return True
            if shape is not None and (img.height, img.width) != tuple(shape):
                return True
            if img.mode == "P":
                return "transparency" in img.info
            # Other modes (alpha, 16-bit) are shown composited/scaled in the app: write what it shows.
            return img.mode not in ("RGB", "L", "CMYK")
    except (OSError, ValueError) as error:
        raise ExportError(
            f"cannot read image {path}: {error}; fix or remove the file and export again"
        ) from None


def load_upright_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB exactly as the project shows it (core.images policies: EXIF, alpha, 16-bit)."""
    return load_image(path, max_pixels=None)


def source_image_bytes(
    path: Path, expected_format: str, shape: tuple[int, int] | None, jpeg_quality: int = 95
) -> bytes:
    """The image as `expected_format` bytes: the source file untouched when possible, else encoded once."""
    if not image_needs_reencode(path, expected_format, shape):
        return Path(path).read_bytes()
    rgb = load_upright_rgb(path)
    if shape is not None and rgb.shape[:2] != tuple(shape):
        raise ExportError(
            f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but its mask is {shape[1]}x{shape[0]}; "
            "re-open the image in SegStudio to fix the mask"
        )
    return encode_jpeg(rgb, jpeg_quality) if expected_format == "JPEG" else encode_png(rgb, rgb_input=True)


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def encode_png(array: np.ndarray, rgb_input: bool = False, level: int = 1) -> bytes:
    """PNG bytes of a 2-D uint8/uint16 array or an RGB(A) image, via OpenCV (fast, lossless)."""
    data = array
    if rgb_input and array.ndim == 3:
        data = cv2.cvtColor(array, cv2.COLOR_RGB2BGR if array.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(data), [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:  # pragma: no cover - OpenCV only fails on unsupported dtypes, which we never pass
        raise ExportError("PNG encoding failed")
    return buffer.tobytes()


def encode_palette_png(mask: np.ndarray, palette: np.ndarray) -> bytes:
    """8-bit palette ("P") PNG: pixel values are the indices, colours come from the (256, 3) palette."""
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="P")
    img.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def mask_digest(mask: np.ndarray) -> str:
    """A content hash of a mask (shape included) for incremental export."""
    digest = hashlib.sha1(str(mask.shape).encode())
    digest.update(np.ascontiguousarray(mask).tobytes())
    return digest.hexdigest()


def json_ready(value: Any) -> Any:
    """numpy scalars/arrays -> plain Python, for json.dumps."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
