"""The generic mask PNG folder, and the base of every "image + index PNG" layout.

    images/<name>.<jpg|png>     the source file (JPEG/PNG bytes kept; other formats encoded as PNG)
    masks/<name>.png            single-channel 8-bit PNG: pixel = class index, 255 = void
    colors/<name>.png           optional (ExportOptions.color_masks): RGB in the scheme's colours
    scheme.json                 the class table: {"name", "classes": [{"name", "color"}, ...]}, index = position
    classes.txt                 the same class names, one per line (line i = index i)
    train.txt, val.txt          the image names of each split, one per line, without suffix

Image and mask share the name stem, so the simplest loader (`masks/<stem>.png` next to
`images/<stem>.*`, as torchvision-style segmentation datasets read them) needs no list file.
This is also the layout of the team's CamVid test sample, so a SegStudio export imports back
with `import masks` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from segstudio.core.atomic import atomic_write_text
from segstudio.export.common import (
    SPLITS,
    ExportItem,
    encode_png,
    image_format_of,
    kept_image_name,
    source_image_bytes,
    unique_names,
)
from segstudio.export.engine import DatasetFormat, ItemResult

__all__ = ["IndexMaskFormat", "MaskFolderFormat", "stem_unique_names"]


def stem_unique_names(items: Sequence[ExportItem], previous: dict[str, str]) -> dict[str, str]:
    """`kept_image_name`s whose stems are unique (case-insensitively), for layouts pairing files by stem.

    A mask or label `<stem>.png/.txt` then never collides, even when `a.jpg` and `a.png` are both
    exported; names from `previous` are kept so re-exports reuse unchanged files.
    """
    stems = unique_names(
        ((it.rel_path, PurePosixPath(kept_image_name(it.rel_path, ".png")).stem) for it in items),
        {k: PurePosixPath(v).stem for k, v in previous.items()},
    )
    return {
        it.rel_path: stems[it.rel_path] + PurePosixPath(kept_image_name(it.rel_path, ".png")).suffix
        for it in items
    }


class IndexMaskFormat(DatasetFormat):
    """An image file plus a single-channel index PNG per image; subclasses choose folders and values."""

    def options_key(self) -> dict[str, Any]:
        return {"jpeg_quality": self.options.jpeg_quality, "color_masks": self.options.color_masks}

    def prepare_names(self, items: Sequence[ExportItem], previous: dict[str, str]) -> dict[str, str]:
        return stem_unique_names(items, previous)

    # -- what a layout decides -----------------------------------------------------------------

    def image_rel(self, split: str, name: str) -> str:
        raise NotImplementedError

    def mask_rel(self, split: str, stem: str) -> str:
        raise NotImplementedError

    def color_rel(self, split: str, stem: str) -> str:
        raise NotImplementedError

    def mask_values(self, mask: np.ndarray) -> np.ndarray:
        """Project indices -> the values this layout stores (identity by default)."""
        return mask

    def mask_colors(self, mask: np.ndarray) -> np.ndarray:
        """The optional colour PNG: (H, W, 3) RGB in the scheme's colours (void in the void colour)."""
        return self.scheme.lut()[mask]

    # -- shared --------------------------------------------------------------------------------

    def write_item(self, root: Path, item: ExportItem, name: str, mask: np.ndarray) -> ItemResult:
        stem = PurePosixPath(name).stem
        image_rel = self.image_rel(item.split, name)
        data = source_image_bytes(
            item.image_path, image_format_of(name), mask.shape, self.options.jpeg_quality
        )
        files = [
            self.write_file(root, image_rel, data),
            self.write_file(root, self.mask_rel(item.split, stem), encode_png(self.mask_values(mask))),
        ]
        if self.options.color_masks:
            colors = encode_png(self.mask_colors(mask), rgb_input=True)
            files.append(self.write_file(root, self.color_rel(item.split, stem), colors))
        return ItemResult(files, {"image": image_rel, "mask": files[1]})

    @staticmethod
    def by_split(
        entries: list[tuple[ExportItem, str, ItemResult]],
    ) -> dict[str, list[tuple[str, ItemResult]]]:
        out: dict[str, list[tuple[str, ItemResult]]] = {split: [] for split in SPLITS}
        for item, name, result in entries:
            out.setdefault(item.split, []).append((name, result))
        return out


class MaskFolderFormat(IndexMaskFormat):
    name = "masks"
    version = 1

    def image_rel(self, split: str, name: str) -> str:
        return f"images/{name}"

    def mask_rel(self, split: str, stem: str) -> str:
        return f"masks/{stem}.png"

    def color_rel(self, split: str, stem: str) -> str:
        return f"colors/{stem}.png"

    def write_index(self, root: Path, entries: list[tuple[ExportItem, str, ItemResult]]) -> list[str]:
        written = []
        for split, rows in self.by_split(entries).items():
            atomic_write_text(
                root / f"{split}.txt", "".join(f"{PurePosixPath(name).stem}\n" for name, _ in rows)
            )
            written.append(f"{split}.txt")
        atomic_write_text(root / "classes.txt", "".join(f"{n}\n" for n in self.scheme.names))
        self.scheme.save(root / "scheme.json")
        return written + ["classes.txt", "scheme.json"]
