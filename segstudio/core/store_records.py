"""The plain records the project store hands out (no SQL, no I/O): what an image, a prediction,
a model version and a reconcile pass look like to callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.errors import ProjectError
from segstudio.core.hashing import stable_fraction

__all__ = [
    "IMAGE_COLUMNS",
    "ImageRecord",
    "ModelVersion",
    "Prediction",
    "ReconcileReport",
    "Status",
    "db_path",
    "image_record",
    "path_from_db",
    "split_for_hash",
    "status_of",
]


class Status(StrEnum):
    NEW = "new"
    PREDICTED = "predicted"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ImageRecord:
    """One image as the project knows it (a snapshot; mutating calls return a fresh one)."""

    id: int
    rel_path: str
    width: int | None
    height: int | None
    content_hash: str
    status: Status
    split: str  # "train" or "val"
    model_version: str | None
    mean_confidence: float | None
    error: str | None  # why the image cannot be read, or None
    created_at: float  # seconds since the epoch
    updated_at: float

    @property
    def shape(self) -> tuple[int, int] | None:
        """(height, width) of masks for this image, or None if unreadable."""
        if self.width is None or self.height is None:
            return None
        return (self.height, self.width)


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # (H, W) uint8 scheme indices, as shown to the user
    confidence: np.ndarray | None  # (H, W) uint8, 255 = certain
    raw_labels: np.ndarray | None  # labels before refinement (CRF), if stored


@dataclass(frozen=True)
class ModelVersion:
    version: str
    checkpoint_path: Path
    arch: str
    metrics: dict[str, Any]
    parent: str | None
    created_at: float


@dataclass
class ReconcileReport:
    """What `reconcile()` found on disk compared with the database."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    changed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # came back after being removed
    #: changed to other dimensions: masks/predictions no longer fit, moved to `stale/`, status reset
    invalidated: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.changed or self.restored)


_IMAGE_FIELDS = tuple(f.name for f in fields(ImageRecord))
#: The `images` columns an ImageRecord is built from, in its field order (derived, so they cannot drift).
IMAGE_COLUMNS = ", ".join(_IMAGE_FIELDS)
_STATUS_BY_VALUE = {status.value: status for status in Status}


#: Marks a stored path whose file name is not valid UTF-8 (kept as its raw bytes, one char per byte).
_RAW_PREFIX = "\x00raw:"


def db_path(rel_path: str) -> str:
    """`rel_path` as SQLite can store it (and `path_from_db` gives back exactly).

    On Linux a file name is bytes; Python keeps bytes that are not UTF-8 as lone surrogates, which
    SQLite's UTF-8 text refuses. Such a name is stored as NUL + 'raw:' + its bytes read as Latin-1
    (no file name contains NUL, so it cannot collide); every other name is stored as it is, so
    existing databases need no migration.
    """
    try:
        rel_path.encode("utf-8")
    except UnicodeEncodeError:
        return _RAW_PREFIX + rel_path.encode("utf-8", "surrogateescape").decode("latin-1")
    return rel_path


def path_from_db(text: str) -> str:
    if text.startswith(_RAW_PREFIX):
        return text[len(_RAW_PREFIX) :].encode("latin-1").decode("utf-8", "surrogateescape")
    return text


def image_record(row: tuple[Any, ...]) -> ImageRecord:
    """An ImageRecord from a row selected with IMAGE_COLUMNS."""
    values = dict(zip(_IMAGE_FIELDS, row, strict=True))
    values["rel_path"] = path_from_db(values["rel_path"])
    values["status"] = _STATUS_BY_VALUE[values["status"]]
    return ImageRecord(**values)


def status_of(value: Status | str) -> Status:
    """Parse a status given by a caller, with a message listing the valid ones."""
    try:
        return Status(value)
    except ValueError:
        raise ProjectError(
            f"unknown image status {value!r}; use one of: {', '.join(s.value for s in Status)}"
        ) from None


def split_for_hash(hash_hex: str, val_fraction: float) -> str:
    """'val' for a stable pseudo-random `val_fraction` of contents, else 'train'.

    Keyed by content hash so a renamed or duplicated file keeps (and shares) its split:
    no image can leak from val into train by being copied.
    """
    return "val" if stable_fraction(hash_hex) < val_fraction else "train"
