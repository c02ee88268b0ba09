"""What the importers of "image + index PNG" layouts share: pairing files, scanning mask values.

Both the mask PNG folder and the CamVid layout store one single-channel PNG of class values per
image, next to (or in a sibling folder of) the image with the same stem. Colour (RGB) masks are
read too when the class table gives colours: each pixel's colour names its class. The preview reads every
mask once, so values the class table does not name are listed before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.errors import ExportError, MaskError
from segstudio.core.images import IMAGE_EXTENSIONS
from segstudio.core.masks import MAX_MASK_PIXELS, load_mask
from segstudio.core.schemes import UNLABELED, VOID_COLOR
from segstudio.export.import_common import ImportSample, MappingRow

__all__ = [
    "Pair",
    "color_codes",
    "find_image",
    "read_list",
    "read_source_mask",
    "read_text_file",
    "samples_from_pairs",
    "unknown_color_rows",
]

_SUFFIX_ORDER = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Pair:
    """One image and its index mask, where it goes in the project, and its split (or None)."""

    image: Path
    mask: Path
    rel_path: str
    split: str | None = None


def find_image(folder: Path, stem: str) -> Path | None:
    """The image `<folder>/<stem>.<ext>` for any supported suffix (PNG first, as masks are PNG), or None."""
    for suffix in _SUFFIX_ORDER + tuple(s.upper() for s in _SUFFIX_ORDER):
        candidate = folder / f"{stem}{suffix}"
        if candidate.suffix.lower() in IMAGE_EXTENSIONS and candidate.is_file():
            return candidate
    return None


def read_text_file(path: Path) -> str:
    """A dataset's text file (list, class table) as UTF-8; ExportError naming it when unreadable."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not part of the first name
    except (OSError, UnicodeError) as error:
        raise ExportError(
            f"cannot read {path}: {error}; fix or remove the file (UTF-8 text expected)"
        ) from None


def read_list(path: Path) -> list[list[str]]:
    """The non-empty, non-comment lines of a list file, split on whitespace."""
    rows = []
    for line in read_text_file(path).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append(line.split())
    return rows


def _codes(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]


def color_codes(colors: np.ndarray) -> dict[int, int]:
    """Colour masks: 24-bit colour -> source value for (n, 3) class colours; the void colour -> 255."""
    table = {
        int(code): value
        for value, code in reversed(list(enumerate(_codes(np.asarray(colors, dtype=np.uint8)))))
    }
    table.setdefault(int(_codes(np.array(VOID_COLOR, dtype=np.uint8))), UNLABELED)
    return table


def read_source_mask(path: Path, colors: dict[int, int] | None) -> tuple[np.ndarray, set[int]]:
    """Source values of one mask and the colours no class has: index PNGs as they are, colour
    (RGB) PNGs through `colors` when the class table gives colours (unknown colours become void)."""
    try:
        with Image.open(path) as img:
            colour = img.mode in ("RGB", "RGBA") and colors is not None
            if colour and img.width * img.height > MAX_MASK_PIXELS:  # the header, before any decoding
                raise MaskError(
                    f"mask {path} claims {img.width}x{img.height} pixels, more than {MAX_MASK_PIXELS:,}; "
                    "it is not a usable mask"
                )
            rgb = np.asarray(img.convert("RGB")) if colour else None
    except MaskError as error:
        raise ExportError(str(error)) from None
    except Exception:
        rgb = None
    if rgb is None or colors is None:
        return load_mask(path), set()
    unique, inverse = np.unique(_codes(rgb), return_inverse=True)
    values = np.array([colors.get(int(code), UNLABELED) for code in unique], dtype=np.uint8)
    return values[inverse].reshape(rgb.shape[:2]), {int(c) for c in unique if int(c) not in colors}


def samples_from_pairs(
    pairs: list[Pair], lut: np.ndarray, colors: dict[int, int] | None = None
) -> tuple[list[ImportSample], np.ndarray, set[int]]:
    """Import samples whose masks map through `lut`, the source values the masks use (bool (256,)),
    and the colours of colour masks that `colors` does not know."""
    seen = np.zeros(256, dtype=bool)
    unknown: set[int] = set()
    samples = []
    for pair in pairs:
        values, strangers = read_source_mask(pair.mask, colors)
        seen[np.unique(values)] = True
        unknown |= strangers
        load = lambda p=pair.mask: lut[read_source_mask(p, colors)[0]]  # noqa: E731
        samples.append(ImportSample(pair.rel_path, load, image_path=pair.image, split=pair.split))
    return samples, seen, unknown


def unknown_color_rows(unknown: set[int]) -> list[MappingRow]:
    """Preview rows (unmapped, so the import stops) for colours a colour mask uses but no class has."""
    return [
        MappingRow(
            f"colour {c >> 16},{(c >> 8) & 255},{c & 255}",
            None,
            "",
            "colour found in masks, not in the class table",
        )
        for c in sorted(unknown)
    ]
