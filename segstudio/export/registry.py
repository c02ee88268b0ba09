"""Named registries of export formats and import sources, with errors that list the choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segstudio.core.errors import ExportError
from segstudio.core.schemes import LabelScheme
from segstudio.export.camvid import CamvidFormat
from segstudio.export.cityscapes import CityscapesFormat
from segstudio.export.coco import CocoFormat
from segstudio.export.common import ExportOptions
from segstudio.export.engine import DatasetFormat
from segstudio.export.mask_folder import MaskFolderFormat
from segstudio.export.voc import VocFormat
from segstudio.export.yolo import YoloFormat

__all__ = [
    "FORMAT_TITLES",
    "IMPORTER_TITLES",
    "available_formats",
    "available_importers",
    "create_format",
    "get_format",
    "get_importer",
]

_FORMATS: dict[str, type[DatasetFormat]] = {
    "voc": VocFormat,
    "cityscapes": CityscapesFormat,
    "coco": CocoFormat,
    "masks": MaskFolderFormat,
    "camvid": CamvidFormat,
    "yolo": YoloFormat,
}

#: one line per format for menus and --help (the GUI dialogs list these)
FORMAT_TITLES: dict[str, str] = {
    "voc": "Pascal VOC 2012 (segmentation)",
    "cityscapes": "Cityscapes (gtFine)",
    "coco": "COCO (RLE, one per class)",
    "masks": "Mask PNG folder (images/ + masks/)",
    "camvid": "CamVid / SegNet (train/ + trainannot/)",
    "yolo": "YOLO segmentation (Ultralytics polygons)",
}

#: import source kind -> "module:function" building an ImportPlan (imported lazily)
_IMPORTERS: dict[str, str] = {
    "voc": "segstudio.export.voc_import:preview_voc",
    "cityscapes": "segstudio.export.cityscapes_import:preview_cityscapes",
    "labelme": "segstudio.export.labelme_import:preview_labelme",
    "masks": "segstudio.export.mask_folder_import:preview_mask_folder",
    "camvid": "segstudio.export.camvid_import:preview_camvid",
    "coco": "segstudio.export.coco_import:preview_coco",
}

IMPORTER_TITLES: dict[str, str] = {
    "labelme": "Folder of labelme JSON files",
    "voc": "Pascal VOC (VOCdevkit)",
    "cityscapes": "Cityscapes (leftImg8bit + gtFine)",
    "masks": "Mask PNG folder (images/ + masks/)",
    "camvid": "CamVid / SegNet (train/ + trainannot/)",
    "coco": "COCO (annotations/*.json: polygons, RLE)",
}


def available_formats() -> list[str]:
    return list(_FORMATS)


def get_format(name: str) -> type[DatasetFormat]:
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in _FORMATS:
        raise ExportError(f"unknown export format {name!r}; choose one of: {', '.join(_FORMATS)}")
    return _FORMATS[key]


def create_format(
    name: str, scheme: LabelScheme, options: ExportOptions | None = None, project_name: str = "city"
) -> DatasetFormat:
    cls = get_format(name)
    if cls is CityscapesFormat:
        return CityscapesFormat(scheme, options, project_name=project_name)
    return cls(scheme, options)


def available_importers() -> list[str]:
    return list(_IMPORTERS)


def get_importer(kind: str) -> Callable[..., Any]:
    """The preview function of an import source: preview(source, scheme=None) -> ImportPlan."""
    key = kind.strip().lower() if isinstance(kind, str) else ""
    if key not in _IMPORTERS:
        raise ExportError(f"unknown import source {kind!r}; choose one of: {', '.join(_IMPORTERS)}")
    import importlib

    from segstudio.export.import_common import readable_dataset_errors

    module_name, function = _IMPORTERS[key].split(":")
    return readable_dataset_errors(getattr(importlib.import_module(module_name), function))
