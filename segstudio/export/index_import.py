"""What the importers of "image + index PNG" layouts share: pairing files, scanning mask values.

Both the mask PNG folder and the CamVid layout store one single-channel PNG of class values per
image, next to (or in a sibling folder of) the image with the same stem. The preview reads every
mask once, so values the class table does not name are listed before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segstudio.core.errors import ExportError
from segstudio.core.images import IMAGE_EXTENSIONS
from segstudio.core.masks import load_mask
from segstudio.export.import_common import ImportSample

__all__ = ["Pair", "find_image", "read_list", "read_text_file", "samples_from_pairs"]

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
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as error:
        raise ExportError(f"cannot read {path}: {error}; fix or remove the file (UTF-8 text expected)") from None


def read_list(path: Path) -> list[list[str]]:
    """The non-empty, non-comment lines of a list file, split on whitespace."""
    rows = []
    for line in read_text_file(path).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append(line.split())
    return rows


def samples_from_pairs(pairs: list[Pair], lut: np.ndarray) -> tuple[list[ImportSample], np.ndarray]:
    """Import samples whose masks map through `lut`, and which source values the masks use (bool (256,))."""
    seen = np.zeros(256, dtype=bool)
    samples = []
    for pair in pairs:
        seen[np.unique(load_mask(pair.mask))] = True
        samples.append(ImportSample(pair.rel_path, lambda p=pair.mask: lut[load_mask(p)], image_path=pair.image, split=pair.split))
    return samples, seen
