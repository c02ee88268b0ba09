"""A Pascal VOC segmentation folder -> an ImportPlan.

Accepts the VOC20xx folder itself, a VOCdevkit folder or its parent. Images listed in
ImageSets/Segmentation/{train,val}.txt (or, without lists, every SegmentationClass/*.png) are
imported with their split. The scheme comes from `segstudio_scheme.json` (SegStudio's own
exports), else `class_names.txt`, else the 21 VOC classes; with an explicit scheme the class
names map by loose name. Pixel values outside the classes (other than 255) are listed as unmapped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.errors import ExportError, SchemeError, SegStudioError, UnsafePathError
from segstudio.core.images import DEFAULT_MAX_PIXELS, ImageReadError, read_image_size
from segstudio.core.masks import load_mask
from segstudio.core.paths import contained_relative, resolve_inside
from segstudio.core.schemes import VOC_CLASSES, ClassDef, LabelScheme, voc_colormap, voc_scheme
from segstudio.export.import_common import ImportPlan, ImportSample, map_values

__all__ = ["find_voc_root", "preview_voc"]


def find_voc_root(source: Path) -> Path:
    """The folder holding SegmentationClass/ (source itself, or VOCdevkit/VOC20xx below it)."""
    candidates = [source] + sorted(source.glob("VOC*")) + sorted(source.glob("VOCdevkit/VOC*"))
    for candidate in candidates:
        if (candidate / "SegmentationClass").is_dir():
            return candidate
    raise ExportError(
        f"no Pascal VOC segmentation data in {source}; choose the folder with SegmentationClass/ "
        "(e.g. VOCdevkit/VOC2012) or one of its parents"
    )


def _source_scheme(root: Path) -> LabelScheme:
    if (root / "segstudio_scheme.json").is_file():
        try:
            return LabelScheme.load(root / "segstudio_scheme.json")
        except SchemeError:
            pass
    names_file = root / "class_names.txt"
    if names_file.is_file():
        try:
            names = [n.strip() for n in names_file.read_text(encoding="utf-8-sig").split("\n") if n.strip()]
            if tuple(names) == VOC_CLASSES:
                return voc_scheme()
            if names:
                cmap = voc_colormap(len(names))
                names = ["background" if n == "_background_" else n for n in names]
                return LabelScheme(
                    root.name, tuple(ClassDef(n, tuple(int(c) for c in cmap[i])) for i, n in enumerate(names))
                )
        except (OSError, UnicodeError, SchemeError) as error:
            raise ExportError(
                f"{names_file}: {error}; fix the class list (one UTF-8 name per line)"
            ) from None
    return voc_scheme()


def _listed_ids(sets: Path, warnings: list[str]) -> dict[str, str | None]:
    """Image ids of ImageSets/Segmentation/{train,val}.txt with their split (train wins a clash)."""
    splits: dict[str, str | None] = {}
    for split in ("train", "val"):
        list_file = sets / f"{split}.txt"
        if list_file.is_file():
            try:
                text = list_file.read_text(
                    encoding="utf-8-sig", errors="surrogateescape"
                )  # ids are file names: any bytes
            except (OSError, UnicodeError) as error:
                raise ExportError(f"cannot read {list_file}: {error}; fix or remove the list file") from None
            for line in text.splitlines():
                image_id = line.strip()
                if image_id and splits.setdefault(image_id, split) != split:
                    warnings.append(f"{image_id} is listed in both train.txt and val.txt; imported as train")
    return splits


def _sample_paths(root: Path, image_id: str, allow_outside: bool) -> tuple[Path, Path, str]:
    """(mask, image, project path) of one list entry; UnsafePathError when the id leaves its folder."""
    mask_path = resolve_inside(root / "SegmentationClass", f"{image_id}.png", allow_outside=allow_outside)
    image_path = resolve_inside(root / "JPEGImages", f"{image_id}.jpg", allow_outside=allow_outside)
    try:
        rel = contained_relative(f"{image_id}.jpg").as_posix()
    except UnsafePathError:  # only reachable with allow_outside: the copy keeps just the file name
        rel = contained_relative(image_path.name).as_posix()
    return mask_path, image_path, rel


def _image_shape(image_path: Path) -> tuple[int, int] | None:
    """(height, width) from the image header, so a mask of another size is refused before decoding;
    None for an unreadable image (the project records it as unreadable and imports no mask)."""
    try:
        width, height = read_image_size(image_path, DEFAULT_MAX_PIXELS)
    except ImageReadError:
        return None
    return height, width


def preview_voc(
    source: str | Path, scheme: LabelScheme | None = None, allow_outside: bool = False
) -> ImportPlan:
    """Read a VOC folder (nothing is written); list entries that leave their folders are skipped
    with a warning (read anyway with `allow_outside`)."""
    source = Path(source).expanduser().absolute()
    root = find_voc_root(source)
    own = _source_scheme(root)
    target = scheme or own
    mapping = map_values(
        [(value, cls.name) for value, cls in enumerate(own.classes)], target, by_name=scheme is not None
    )
    lut = mapping.lut

    warnings: list[str] = []
    splits = _listed_ids(root / "ImageSets" / "Segmentation", warnings)
    if not splits:
        splits = {p.stem: None for p in sorted((root / "SegmentationClass").glob("*.png"))}
    samples: list[ImportSample] = []
    used: set[str] = set()
    seen_values = np.zeros(256, dtype=bool)
    for image_id, split in splits.items():
        try:
            mask_path, image_path, rel = _sample_paths(root, image_id, allow_outside)
        except UnsafePathError as error:
            warnings.append(f"ImageSets/Segmentation: entry {image_id!r} refused: {error} (skipped)")
            continue
        if not mask_path.is_file() or not image_path.is_file():
            warnings.append(f"{image_id}: image or mask missing (skipped)")
            continue
        if rel.casefold() in used:
            warnings.append(f"{image_id}: another entry already imports {rel} (skipped)")
            continue
        try:
            values = np.unique(load_mask(mask_path, _image_shape(image_path)))
        except SegStudioError as error:
            warnings.append(f"{image_id}: {error} (skipped)")
            continue
        used.add(rel.casefold())
        seen_values[values] = True
        samples.append(
            ImportSample(rel, lambda p=mask_path: lut[load_mask(p)], image_path=image_path, split=split)
        )
    return ImportPlan(
        "voc", root, target, mapping.rows + mapping.unknown_rows(seen_values), samples, warnings
    )
