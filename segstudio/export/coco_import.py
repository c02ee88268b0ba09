"""COCO instance/stuff annotations -> an ImportPlan of semantic masks (the mirror of the COCO export).

Accepts a folder with `annotations/*.json` (SegStudio's and Datumaro's `instances_<split>.json`,
COCO's `instances_train2017.json`, our older `<split>.json`) or one annotation file. A file's
split is `train` or `val` when its name says so. Images are looked up, in order, in
`images/<subset>/`, `images/`, `<subset>/` (COCO's `train2017/`) and the dataset folder, where
`<subset>` is the file name without `instances_`; `file_name` is resolved inside the dataset
folder (`core.paths.resolve_inside`), never outside it unless `allow_outside`.

Masks: every annotation is decoded with pycocotools (polygons, uncompressed and compressed RLE)
and painted in this order: crowd regions (`iscrowd` 1) first, then the others largest area first,
so a small object lying on a large one stays visible; pixels no annotation covers are void (255).
Crowd regions keep their class (a crowd of people is still 'person' in a semantic mask).

Classes: the categories in id order (their `color` when given, else the VOC colours); with an
explicit scheme, categories map by loose name and unmatched ones are listed as unmapped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from segstudio.core.errors import ExportError
from segstudio.core.paths import resolve_inside
from segstudio.core.safe_json import load_json_file, whole_number
from segstudio.core.schemes import UNLABELED, ClassDef, LabelScheme, voc_colormap
from segstudio.export.claimed_size import checked_image_size
from segstudio.export.coco_checks import check_segmentation
from segstudio.export.import_common import (
    ImportPlan,
    ImportSample,
    MappingRow,
    lookup_by_name,
    original_names,
)

__all__ = ["annotation_mask", "preview_coco", "semantic_mask"]


def annotation_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """(H, W) bool area of one COCO segmentation: polygon list, uncompressed or compressed RLE.

    Checked first (`coco_checks.check_segmentation`): pycocotools crashes on hostile numbers."""
    check_segmentation(segmentation, height, width)
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        polygons = [[float(v) for v in p] for p in segmentation]
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(
            {"size": [height, width], "counts": segmentation["counts"]}, height, width
        )
    else:
        rle = {"size": [height, width], "counts": segmentation["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def semantic_mask(
    annotations: list[dict[str, Any]], height: int, width: int, index_of: dict[int, int]
) -> np.ndarray:
    """Paint annotations (crowd first, then largest first) into a uint8 mask of project indices."""
    mask = np.full((height, width), UNLABELED, dtype=np.uint8)
    order = sorted(annotations, key=lambda a: (not a.get("iscrowd", 0), -float(a.get("area", 0) or 0)))
    for ann in order:
        index = index_of.get(whole_number(ann.get("category_id", -1), "category_id", ExportError))
        if index is None or "segmentation" not in ann:
            continue
        mask[annotation_mask(ann["segmentation"], height, width)] = index
    return mask


def _annotation_files(source: Path) -> tuple[Path, list[Path]]:
    if source.is_file():
        root = source.parent.parent if source.parent.name == "annotations" else source.parent
        return root, [source]
    folder = source / "annotations"
    files = (
        sorted(p for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []
    )  # no FIFO: it would block
    if not files:
        raise ExportError(
            f"no COCO annotations in {source}; choose the folder with annotations/*.json, or one .json file"
        )
    return source, files


def _split_of(path: Path) -> str | None:
    name = path.stem.casefold()
    return "val" if "val" in name else "train" if "train" in name else None


def _image_dir(root: Path, annotation_file: Path, allow_outside: bool) -> Callable[[str], Path]:
    subset = annotation_file.stem.removeprefix("instances_")
    candidates = [f"images/{subset}", "images", subset, ""]
    existing = [c for c in candidates if (root / c).is_dir()]

    def locate(file_name: str) -> Path:
        paths = [
            resolve_inside(root, file_name, base=folder, allow_outside=allow_outside) for folder in existing
        ]
        return next((p for p in paths if p.is_file()), paths[0])

    return locate


def _load(path: Path) -> dict[str, Any]:
    data = load_json_file(path, ExportError, "fix the COCO file or remove it from annotations/")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("categories"), list)
    ):
        raise ExportError(f"{path} is not a COCO annotation file (it needs 'images' and 'categories' lists)")
    return data


def _own_scheme(name: str, categories: list[dict[str, Any]]) -> LabelScheme:
    cmap = voc_colormap(len(categories) + 1)
    classes = []
    for i, cat in enumerate(categories):
        color = cat.get("color")
        valid = isinstance(color, list) and len(color) == 3
        classes.append(
            ClassDef(str(cat["name"]), tuple(color) if valid else tuple(int(c) for c in cmap[i + 1]))
        )
    return LabelScheme(name, tuple(classes))


def _categories(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[int, dict[str, Any]] = {}
    for data in files:
        for number, cat in enumerate(data["categories"]):
            by_id.setdefault(whole_number(cat["id"], f"category {number}: id", ExportError), cat)
    return [by_id[k] for k in sorted(by_id)]


def _mapping(
    categories: list[dict[str, Any]], target: LabelScheme, by_name: bool, files: list[dict[str, Any]]
) -> tuple[dict[int, int], list[MappingRow]]:
    """(category id -> project index, preview rows) including category ids annotations use but never list."""
    index_of: dict[int, int] = {}
    rows = []
    for position, cat in enumerate(categories):
        index = lookup_by_name(target, str(cat["name"])) if by_name else position
        rows.append(
            MappingRow(
                f"{cat['id']}: {cat['name']}", index, target.classes[index].name if index is not None else ""
            )
        )
        if index is not None:
            index_of[whole_number(cat["id"], "category id", ExportError)] = index
    rows.append(MappingRow("(not annotated)", UNLABELED, "void"))
    listed = {whole_number(cat["id"], "category id", ExportError) for cat in categories}
    used = {
        whole_number(a.get("category_id", -1), "annotation category_id", ExportError)
        for d in files
        for a in d.get("annotations", [])
    }
    stray = sorted(used - listed)
    rows += [
        MappingRow(f"{cid}: (not in categories)", None, "", "category id used by annotations")
        for cid in stray
    ]
    return index_of, rows


@dataclass
class _Context:
    """What every annotation file of one import shares."""

    root: Path
    allow_outside: bool
    index_of: dict[int, int]
    originals: dict[str, str]
    warnings: list[str]
    taken: set[str] = field(default_factory=set)


def _samples(path: Path, data: dict[str, Any], context: _Context) -> list[ImportSample]:
    """One annotation file's images with annotations, as import samples (skips listed in warnings)."""
    locate = _image_dir(context.root, path, context.allow_outside)
    warnings, taken, index_of = context.warnings, context.taken, context.index_of
    by_image: dict[int, list[dict[str, Any]]] = {}
    for number, ann in enumerate(data.get("annotations", [])):
        where = f"{path}: annotation {number}"
        by_image.setdefault(whole_number(ann["image_id"], f"{where}: image_id", ExportError), []).append(ann)
        area = ann.get("area", 0)
        if not (
            area is None or (isinstance(area, (int, float)) and not isinstance(area, bool) and area == area)
        ):
            raise ExportError(f"{where}: area must be a number, got {str(area)[:40]}; fix the file")
    samples = []
    for number, image in enumerate(data["images"]):
        anns = by_image.get(whole_number(image["id"], f"{path}: image {number}: id", ExportError), [])
        image_path = locate(
            str(image["file_name"])
        )  # an escaping file_name refuses the import (UnsafePathError)
        if not anns or not image_path.is_file():
            reason = "has no annotations" if image_path.is_file() else f"is missing ({image_path})"
            warnings.append(f"{image['file_name']} {reason} (skipped)")
            continue
        rel = context.originals.get(str(image["file_name"]), image_path.name)
        rel = rel if rel.casefold() not in taken else f"{path.stem}/{rel}"
        taken.add(rel.casefold())
        where = f"{path} (image {image['file_name']!r})"
        h, w = checked_image_size(
            where, (image.get("height"), image.get("width")), ("height", "width"), image_path
        )
        for ann in anns:  # before pycocotools ever sees them (see coco_checks)
            try:
                check_segmentation(ann.get("segmentation", []), h, w)
            except ExportError as error:
                raise ExportError(
                    f"{where}, annotation {str(ann.get('id'))[:20]}: {error}; fix or remove that annotation"
                ) from None
        samples.append(
            ImportSample(
                rel,
                lambda a=anns, h=h, w=w: semantic_mask(a, h, w, index_of),
                image_path=image_path,
                split=_split_of(path),
            )
        )
    return samples


def preview_coco(
    source: str | Path, scheme: LabelScheme | None = None, allow_outside: bool = False
) -> ImportPlan:
    root, paths = _annotation_files(Path(source).expanduser().absolute())
    files = [_load(p) for p in paths]
    warnings: list[str] = []
    samples: list[ImportSample] = []
    try:
        categories = _categories(files)
        if not categories:
            raise ExportError(f"{paths[0]} lists no categories; nothing to import")
        target = scheme or _own_scheme(root.name or "coco", categories)
        index_of, rows = _mapping(categories, target, scheme is not None, files)
        context = _Context(root, allow_outside, index_of, original_names(root, "coco", warnings), warnings)
        for path, data in zip(paths, files):
            samples += _samples(path, data, context)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ExportError(
            f"{', '.join(p.name for p in paths)}: a category, image or annotation lacks a field or has the wrong type "
            f"({type(error).__name__}: {error}); COCO needs categories with id and name, images with id, file_name, "
            "height and width, annotations with image_id and category_id"
        ) from None
    return ImportPlan("coco", root, target, rows, samples, warnings)
