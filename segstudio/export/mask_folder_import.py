"""A mask PNG folder (`images/` + `masks/`) -> an ImportPlan.

Each `masks/<path>.png` (single-channel class values, 255 void; subfolders allowed) pairs with
the image of the same path and stem under `images/` (or, failing that, the stem without a usual
mask ending such as `_mask`, `_label`, `_gt`: `masks/x_mask.png` pairs with `images/x.jpg`).
The class table is, in order of preference: `scheme.json` (SegStudio's scheme format, as the
exporter and the team's CamVid sample write it), `classes.txt` (one name per line, line i =
value i, VOC palette colours), else `class 0`, `class 1`, ... for every value found. Colour (RGB)
masks are read through the table's colours (VOC's void colour is void); a colour no class has
is listed as unmapped. With an explicit scheme, the source classes map to it by loose name.
`train.txt` / `val.txt` (image stems, one per line) give splits when present; their entries are
resolved inside the folder (`core.paths.resolve_inside`), never outside it unless
`allow_outside`. A SegStudio export's manifest gives the images back their project paths.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from segstudio.core.errors import ExportError, SchemeError
from segstudio.core.images import IMAGE_EXTENSIONS
from segstudio.core.masks import load_mask
from segstudio.core.paths import resolve_inside
from segstudio.core.schemes import UNLABELED, ClassDef, LabelScheme, voc_colormap
from segstudio.export.import_common import ImportPlan, map_values, original_names
from segstudio.export.index_import import (
    Pair,
    color_codes,
    find_image,
    read_list,
    read_text_file,
    samples_from_pairs,
    unknown_color_rows,
)

__all__ = ["preview_mask_folder", "source_scheme"]

MASK_DIRS = ("masks", "labels")
#: mask-name endings other tools add ('x_mask.png' for 'x.jpg'), tried when no image has the mask's stem
MASK_SUFFIXES = ("_mask", "_masks", "_label", "_labels", "_gt", "_seg", "_L")


def _image_for(folder: Path, stem: str) -> Path | None:
    image = find_image(folder, stem)
    for suffix in MASK_SUFFIXES:
        if image is None and stem.endswith(suffix) and len(stem) > len(suffix):
            image = find_image(folder, stem[: -len(suffix)])
    return image


def _scheme_from_names(name: str, names: list[str]) -> LabelScheme:
    cmap = voc_colormap(len(names))
    return LabelScheme(name, tuple(ClassDef(n, tuple(int(c) for c in cmap[i])) for i, n in enumerate(names)))


def source_scheme(root: Path, mask_paths: list[Path]) -> LabelScheme:
    """The folder's own class table (see the module docstring for the order of preference)."""
    if (root / "scheme.json").is_file():
        try:
            return LabelScheme.load(root / "scheme.json")
        except SchemeError as error:
            raise ExportError(f"{error}; fix or remove scheme.json, or pass a scheme") from None
    names_file = root / "classes.txt"
    if names_file.is_file():
        names = [n.strip() for n in read_text_file(names_file).splitlines() if n.strip()]
        if names:
            return _scheme_from_names(root.name or "masks", names)
    seen = np.zeros(256, dtype=bool)
    for path in mask_paths:
        seen[np.unique(load_mask(path))] = True
    seen[UNLABELED] = False
    top = int(np.flatnonzero(seen).max()) + 1 if seen.any() else 1
    return _scheme_from_names(root.name or "masks", [f"class {v}" for v in range(top)])


def _splits(root: Path, mask_dir: Path, allow_outside: bool) -> tuple[dict[Path, str], list[str]]:
    """mask path -> split from train.txt / val.txt (entries are stems relative to the mask folder)."""
    splits: dict[Path, str] = {}
    warnings = []
    for split in ("train", "val"):
        list_file = root / f"{split}.txt"
        if not list_file.is_file():
            continue
        for row in read_list(list_file):
            suffix = PurePosixPath(row[0].replace("\\", "/")).suffix
            stem = (
                row[0][: -len(suffix)] if suffix.lower() in IMAGE_EXTENSIONS else row[0]
            )  # 'a.v2' keeps its dot
            mask = resolve_inside(mask_dir, f"{stem}.png", allow_outside=allow_outside).resolve()
            if splits.setdefault(mask, split) != split:
                warnings.append(f"{row[0]} is listed in both train.txt and val.txt; imported as train")
    return splits, warnings


def preview_mask_folder(
    source: str | Path, scheme: LabelScheme | None = None, allow_outside: bool = False
) -> ImportPlan:
    root = Path(source).expanduser().absolute()
    mask_dir = next((root / d for d in MASK_DIRS if (root / d).is_dir()), None)
    if mask_dir is None or not (root / "images").is_dir():
        raise ExportError(f"no mask folder in {root}; choose the folder that contains images/ and masks/")
    mask_paths = sorted(
        p for p in mask_dir.rglob("*.png") if p.is_file()
    )  # no FIFO/device: a read would block
    own = source_scheme(root, mask_paths)
    target = scheme or own
    mapping = map_values(list(enumerate(own.names)), target, by_name=scheme is not None)
    splits, warnings = _splits(root, mask_dir, allow_outside)
    originals = original_names(
        root, "masks", warnings
    )  # a SegStudio export: restore the project's file names
    pairs = []
    for mask in mask_paths:
        rel_stem = mask.relative_to(mask_dir).with_suffix("")
        image = _image_for(root / "images" / rel_stem.parent, rel_stem.name)
        if image is None:
            warnings.append(
                f"{mask.relative_to(root).as_posix()}: no image images/{rel_stem.as_posix()}.* (skipped)"
            )
            continue
        rel_path = image.relative_to(root / "images").as_posix()
        rel_path = originals.get(rel_path, rel_path)
        pairs.append(Pair(image, mask, rel_path, splits.get(mask.resolve())))
    samples, seen, colors = samples_from_pairs(pairs, mapping.lut, color_codes(own.colors))
    rows = mapping.rows + mapping.unknown_rows(seen) + unknown_color_rows(colors)
    return ImportPlan("masks", root, target, rows, samples, warnings)
