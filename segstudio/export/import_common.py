"""Importing a dataset as a project: a plan you can show first, then one call that writes it.

Every importer only *reads* in its preview function and returns an `ImportPlan`: the label
scheme the project will get, the class mapping (source label -> project class, or void), and the
samples. `run_import` then builds the project in a staging sibling of the target folder
(images copied, masks saved as `done`) and renames it into place, so a cancelled or failed import
leaves no half project behind (a staging folder left by a killed import is deleted by the next
import into the same target). `import_in_place` instead opens the source folder itself as the
project when the images already sit there (a labelme folder), saving only the masks.
"""

from __future__ import annotations

import errno
import functools
import inspect
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.core.atomic import atomic_write_bytes, fsync_dir
from segstudio.core.errors import DiskWriteError, ExportError, ImageReadError, SegStudioError, UnsafePathError
from segstudio.core.logs import timed
from segstudio.core.paths import contained_relative, resolve_inside
from segstudio.core.safe_json import load_json_file
from segstudio.core.schemes import UNLABELED, LabelScheme
from segstudio.core.task_handle import NullTask, TaskHandle
from segstudio.export.staging import (
    flush_tree,
    follow_out_link,
    make_staging_dir,
    refuse_mount_point,
    remove_dead_staging,
)

__all__ = [
    "ImportPlan",
    "ImportSample",
    "MappingRow",
    "ValueMapping",
    "can_import_in_place",
    "import_in_place",
    "lookup_by_name",
    "map_values",
    "normalize_label",
    "original_names",
    "readable_dataset_errors",
    "run_import",
]


def normalize_label(name: str) -> str:
    """Compare class names loosely: 'potted plant' = 'pottedplant', 'tv/monitor' = 'tvmonitor'."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


_BACKGROUND = {"background", "_background_", "bg"}


def lookup_by_name(scheme: LabelScheme, name: str) -> int | None:
    """The scheme index of a source label by loose name match (background aliases included)."""
    key = normalize_label(name)
    for index, cls in enumerate(scheme.classes):
        if normalize_label(cls.name) == key:
            return index
    if name.strip().casefold() in _BACKGROUND:
        for index, cls in enumerate(scheme.classes):
            if cls.name.strip().casefold() in _BACKGROUND:
                return index
    return None


def original_names(root: Path, dataset_format: str, warnings: list[str]) -> dict[str, str]:
    """Exported name -> original project path, from a SegStudio export's manifest in `root` (if any).

    Importers use it to give images back the paths they had in the exported project. A manifest
    that is not JSON or has fields of the wrong type is an ExportError naming it; a `source` that
    would land outside the new project (`core.paths.contained_relative`) is dropped with a warning,
    and that image keeps its dataset name.
    """
    from segstudio.export.staging import MANIFEST_NAME

    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return {}
    data = load_json_file(path, ExportError, "delete the manifest to import without it")
    if not isinstance(data, dict) or data.get("dataset_format") != dataset_format:
        return {}
    items = data.get("items", [])
    if not isinstance(items, list):
        raise ExportError(
            f"{path}: 'items' must be a list, not {type(items).__name__}; fix or delete the manifest"
        )
    names: dict[str, str] = {}
    owners: dict[str, str] = {}  # source (casefolded) -> the manifest name that claimed it first
    for number, entry in enumerate(items):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("source"), str)
        ):
            raise ExportError(
                f"{path}: item {number} must be an object with text 'name' and 'source'; fix or delete the manifest"
            )
        try:
            source = contained_relative(entry["source"]).as_posix()
        except (UnsafePathError, ValueError) as error:
            warnings.append(
                f"{MANIFEST_NAME}: source of {entry['name']!r} refused: {error} (kept the dataset's name)"
            )
            continue
        first = owners.setdefault(source.casefold(), entry["name"])
        if first != entry["name"]:
            raise ExportError(
                f"{path}: items {first!r} and {entry['name']!r} both restore {source!r}, so one image would "
                "replace the other; fix the manifest or delete it to import with the dataset's own names"
            )
        names[entry["name"]] = source
    return names


@dataclass(frozen=True)
class MappingRow:
    """One source label and where it goes; target_index 255 means void/unlabeled."""

    source: str
    target_index: int | None
    target_name: str
    note: str = ""

    @property
    def target_label(self) -> str:
        """Where this label goes, as the CLI preview and the GUI table both show it."""
        if self.target_index is None:
            return "UNMAPPED"
        if self.target_index == UNLABELED:
            return "void (255)"
        return f"{self.target_index:3d} {self.target_name}"


@dataclass
class ValueMapping:
    """Source mask values -> project indices: the lookup table, the preview rows, what counts as known."""

    lut: np.ndarray
    rows: list[MappingRow]
    known: np.ndarray  # (256,) bool: values with a row (mapped, void, or deliberately ignored)

    def unknown_rows(self, seen: np.ndarray) -> list[MappingRow]:
        """Rows for pixel values found in masks that the source's class table does not name."""
        return [
            MappingRow(f"{value}: (no class name)", None, "", "pixel value found in masks")
            for value in np.flatnonzero(seen & ~self.known)
        ]


def map_values(
    source: list[tuple[int, str]],
    target: LabelScheme,
    by_name: bool,
    void_values: tuple[int, ...] = (UNLABELED,),
) -> ValueMapping:
    """Map each (value, class name) of a source table to `target`: by position, or by loose name."""
    lut = np.full(256, UNLABELED, dtype=np.uint8)
    known = np.zeros(256, dtype=bool)
    rows: list[MappingRow] = []
    for value, name in source:
        index = lookup_by_name(target, name) if by_name else value
        rows.append(
            MappingRow(f"{value}: {name}", index, target.classes[index].name if index is not None else "")
        )
        if index is not None:
            lut[value] = index
            known[value] = True
    for value in void_values:
        rows.append(MappingRow(f"{value}: void", UNLABELED, "void"))
        known[value] = True
    return ValueMapping(lut, rows, known)


@dataclass
class ImportSample:
    rel_path: str  # where the image goes inside the project folder
    load_mask: Callable[[], np.ndarray] = field(repr=False)  # already in project indices
    image_path: Path | None = None
    image_bytes: Callable[[], bytes] | None = field(default=None, repr=False)  # e.g. labelme imageData
    split: str | None = None


@dataclass
class ImportPlan:
    kind: str
    source: Path
    scheme: LabelScheme
    mapping: list[MappingRow]
    samples: list[ImportSample]
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Two samples on one project path: one would silently replace the other (and the count lie)."""
        seen: dict[str, int] = {}
        for number, sample in enumerate(self.samples):
            first = seen.setdefault(sample.rel_path.casefold(), number)
            if first != number:
                raise ExportError(
                    f"two images of {self.source} would both be imported as {sample.rel_path!r} "
                    f"({self.samples[first].image_path} and {sample.image_path}), so one would be lost; "
                    "rename one of them (or fix the dataset's manifest) and import again"
                )

    @property
    def unmapped(self) -> list[str]:
        return [row.source for row in self.mapping if row.target_index is None]

    def outside_files(self) -> list[tuple[str, Path]]:
        """(project path, real file) of images that lie outside the dataset folder, through a link or
        `--allow-outside`. Links to shared image storage are followed on purpose; the preview lists
        them so that a planted one (`creds.jpg -> ~/.ssh/id_rsa`) is seen before anything is copied."""
        root = Path(os.path.realpath(self.source))
        found = []
        for sample in self.samples:
            if sample.image_path is not None:
                real = Path(os.path.realpath(sample.image_path))
                if not real.is_relative_to(root):
                    found.append((sample.rel_path, real))
        return found

    def outside_summary(self, limit: int = 5) -> str | None:
        """One paragraph about `outside_files` for the CLI preview and the GUI's import dialog (None: none)."""
        outside = self.outside_files()
        if not outside:
            return None
        shown = "; ".join(f"{rel} -> {real}" for rel, real in outside[:limit])
        more = f"; and {len(outside) - limit} more" if len(outside) > limit else ""
        return (
            f"{len(outside)} image file(s) lie outside {self.source} (links to shared storage, or planted): "
            f"{shown}{more}. Only files that decode as images are copied into the project"
        )

    def describe(self) -> str:
        """The mapping as a plain-text table (CLI --dry-run, GUI preview)."""
        lines = [
            f"{self.kind} import from {self.source}: {len(self.samples)} images, scheme {self.scheme.name!r}"
        ]
        width = max([len(r.source) for r in self.mapping] + [6])
        for row in self.mapping:
            lines.append(
                f"  {row.source:<{width}} -> {row.target_label}{('  ' + row.note) if row.note else ''}"
            )
        outside = self.outside_summary(limit=20)
        if outside:
            lines.append(f"note: {outside}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def readable_dataset_errors(preview: Callable[..., ImportPlan]) -> Callable[..., ImportPlan]:
    """A preview function whose file-system surprises become an ExportError naming the file.

    Reading a dataset from a stranger meets names longer than the file system allows
    (ENAMETOOLONG), unreadable files and folders, names that are not valid text: each is one
    message naming the entry, not a traceback (the CLI exits 2, the GUI shows it)."""

    @functools.wraps(preview)
    def wrapper(source, *args, **kwargs) -> ImportPlan:
        try:
            return preview(source, *args, **kwargs)
        except OSError as error:
            name = getattr(error, "filename", None) or source
            if getattr(error, "errno", None) == errno.ENAMETOOLONG:
                raise ExportError(
                    f"{name}: this name, from {source}, is longer than the file system allows; "
                    "shorten it (or remove the entry that names it) and import again"
                ) from None
            raise ExportError(
                f"cannot read {name} ({error.strerror or error}); check the dataset's files and permissions"
            ) from None
        except UnicodeError as error:
            raise ExportError(
                f"{source}: a file or name is not valid text ({error}); fix or remove it and import again"
            ) from None

    return wrapper


_IMPORT_TAG = ".segstudio-import-"


def _check_target(target: Path) -> None:
    refuse_mount_point(target, "project")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(
            f"{target} already exists and is not empty; choose a new or empty folder for the imported project"
        )


def _check_plan(plan: ImportPlan) -> None:
    if plan.unmapped:
        raise ExportError(
            f"{len(plan.unmapped)} source label(s) have no class in scheme {plan.scheme.name!r}: "
            f"{', '.join(plan.unmapped)}; choose a scheme that has them (or import without a scheme to get one from the data)"
        )
    if not plan.samples:
        raise ExportError(f"no annotated images found in {plan.source}; check the folder and the source kind")


def _save_masks(project, plan: ImportPlan, handle: TaskHandle, offset: int, total: int) -> None:
    from segstudio.core.project import Status

    for done, sample in enumerate(plan.samples, start=1):
        handle.check_cancelled()
        rec = project.get(sample.rel_path)
        if rec is None or rec.error:
            reason = rec.error if rec is not None else "not recognised as an image"
            plan.warnings.append(f"{sample.rel_path}: {reason}; imported without its mask")
            continue
        try:
            project.load_image(rec)  # a truncated/corrupt image is recorded as unreadable, never marked done
        except ImageReadError as error:
            plan.warnings.append(
                f"{sample.rel_path}: {error.reason}; imported as unreadable, without its mask"
            )
            continue
        try:
            rec = project.save_mask(rec, sample.load_mask(), status=Status.DONE)
        except (ValueError, TypeError, KeyError, IndexError) as error:  # malformed annotation data: say which
            plan.warnings.append(
                f"{sample.rel_path}: its annotation cannot be read ({type(error).__name__}: {error}); imported without its mask"
            )
            continue
        except SegStudioError as error:
            plan.warnings.append(f"{sample.rel_path}: {error}; imported without its mask")
            continue
        if sample.split in ("train", "val"):
            project.set_split(rec, sample.split)  # keep the source dataset's own train/val lists
        handle.set_progress(offset + done, total)


def _copy_image(source: Path, dest: Path) -> str | None:
    """Copy one image file into the new project; the reason, when it does not decode as an image.

    Links to shared storage are followed, so a dataset could link `creds.jpg` to a private file:
    only a file whose header decodes as an image is copied, and the copy itself is checked (what
    lands in the project is what was checked, even if the source changes meanwhile).
    """
    from segstudio.core import images as image_io

    try:
        image_io.read_image_size(source, None)
    except ImageReadError as error:
        return error.reason
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    try:
        image_io.read_image_size(dest, None)
    except ImageReadError as error:
        dest.unlink()
        return error.reason
    return None


def _os_errors_as_user_errors(function: Callable[..., Path]) -> Callable[..., Path]:
    """Disk full / permission problems become a DiskWriteError naming the destination, not a traceback."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> Path:
        try:
            return function(*args, **kwargs)
        except (OSError, DiskWriteError) as caught:
            error = caught.cause if isinstance(caught, DiskWriteError) else caught
            arguments = signature.bind(*args, **kwargs).arguments
            if arguments.get("target_dir") is not None:
                destination, what = (
                    arguments["target_dir"],
                    f"the import into {arguments['target_dir']} (nothing was published)",
                )
            else:
                destination = arguments["plan"].source
                what = f"the import in place in {destination} (the masks saved so far are kept)"
            raise DiskWriteError(destination, what, error) from None

    return wrapper


def can_import_in_place(plan: ImportPlan) -> bool:
    """True when every image already sits in the source folder under its project path (labelme)."""
    return bool(plan.samples) and all(
        s.image_path is not None and s.image_path.resolve() == (plan.source / s.rel_path).resolve()
        for s in plan.samples
    )


@_os_errors_as_user_errors
@timed("import in place")
def import_in_place(
    plan: ImportPlan, handle: TaskHandle | None = None, state_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Open the source folder itself as the project (no copies) and save the masks as done.

    Refuses when any of these images already has a mask in that project, so imported shapes
    never overwrite someone's corrections.
    """
    from segstudio.core.project import Project

    handle = handle or NullTask()
    _check_plan(plan)
    if not can_import_in_place(plan):
        raise ExportError(
            f"the images of {plan.source} are not all inside it; import into a new folder instead"
        )
    with Project.open(plan.source, state_dir=state_dir, scheme=plan.scheme, handle=handle) as project:
        if project.scheme != plan.scheme:
            raise ExportError(
                f"{plan.source} is already a project with scheme {project.scheme.name!r}; import into a new folder instead"
            )
        existing = [
            s.rel_path
            for s in plan.samples
            if (rec := project.get(s.rel_path)) is not None and project.has_mask(rec)
        ]
        if existing:
            raise ExportError(
                f"{len(existing)} image(s) already have masks in this project ({', '.join(existing[:5])}); "
                "import into a new folder instead, so no correction is overwritten"
            )
        _save_masks(project, plan, handle, 0, len(plan.samples))
    handle.set_status(f"imported {len(plan.samples)} images in place")
    return plan.source


@_os_errors_as_user_errors
@timed("import")
def run_import(
    plan: ImportPlan, target_dir: str | os.PathLike[str], handle: TaskHandle | None = None
) -> Path:
    """Create the project in `target_dir` (new or empty): images copied, masks saved as done."""
    from segstudio.core.project import Project  # the store is only needed when writing

    handle = handle or NullTask()
    _check_plan(plan)
    target = follow_out_link(target_dir)
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_staging(target, _IMPORT_TAG)
    staging = make_staging_dir(target, _IMPORT_TAG)
    total = len(plan.samples)
    refused: list[ImportSample] = []
    try:
        handle.set_status(f"copying {total} images")
        for done, sample in enumerate(plan.samples, start=1):
            handle.check_cancelled()
            dest = resolve_inside(
                staging, sample.rel_path
            )  # importers already refuse escapes: a second guard
            if sample.image_path is not None and sample.image_path.is_file():
                reason = _copy_image(sample.image_path, dest)
                if reason is not None:
                    plan.warnings.append(
                        f"{sample.rel_path}: {sample.image_path} is not an image ({reason}); not copied"
                    )
                    refused.append(sample)
            elif sample.image_bytes is not None:
                atomic_write_bytes(dest, sample.image_bytes())
            else:
                raise ExportError(
                    f"the image for {sample.rel_path} is missing ({sample.image_path}); restore it or remove its annotation"
                )
            handle.set_progress(done, 2 * total)
        if refused:  # the count printed afterwards is what the project holds
            plan.samples = [s for s in plan.samples if all(s is not r for r in refused)]
        handle.set_status("saving masks")
        with Project.open(staging, scheme=plan.scheme) as project:
            _save_masks(project, plan, handle, total, 2 * total)
        handle.check_cancelled()
        flush_tree(staging)  # the copied images skip per-file fsync: make them durable before publishing
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
        fsync_dir(target.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    handle.set_status(f"imported {total} images into {target}")
    return target
