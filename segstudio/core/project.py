"""The project store: one image folder, its per-image state in SQLite, its masks as PNG files.

Layout of the state folder (`<image_dir>/.segstudio/`, or a folder the user chose when the image
folder is read-only)::

    project.db              SQLite, WAL mode: images, scheme, settings, model versions
    lock                    fcntl/msvcrt lock: one SegStudio process per project
    masks/<id>.png          corrected masks (what the user made; 255 = unlabeled)
    predictions/<id>.png    the model's labels as shown (after CRF, if any) - never overwritten
    predictions_raw/<id>.png  the model's labels before refinement (optional)
    confidence/<id>.png     round(255 * max softmax probability)
    models/                 checkpoints of fine-tuned model versions
    thumbnails/             free for the GUI's cache

`Project` is a facade: each job lives in its own module behind it, and callers only see this class.

    store_lock        one process per project (OS advisory lock)
    store_schema      connection, transactions, meta table, migrations
    store_reconcile   folder scan: added / removed / changed / renamed by content hash
    store_images      queries and per-image updates of the images table
    store_masks       state folder layout, mask and prediction files
    store_settings    settings with side effects, the label scheme
    store_versions    fine-tuned model versions
    store_effort      editing effort per image (telemetry)
    store_records     the records handed out (ImageRecord, Prediction, ModelVersion, ...)

Mask files are written before the database row that refers to them, each atomically, so a crash at
any moment leaves either the old or the new state.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from segstudio.core import images as image_io
from segstudio.core import masks as mask_io
from segstudio.core import state_guard, store_health, store_reconcile, store_schema, store_settings
from segstudio.core.effort import EffortRow
from segstudio.core.errors import (
    DamagedProjectError,
    ImageReadError,
    ProjectError,
    ProjectLockedError,
    SchemeError,
    SegStudioError,
    StateReadOnlyError,
)
from segstudio.core.hashing import content_hash
from segstudio.core.schemes import LabelScheme, get_scheme
from segstudio.core.store_effort import EffortTable
from segstudio.core.store_images import ImageTable
from segstudio.core.store_lock import LOCK_NAME, LOCKED_MESSAGE, ProcessLock
from segstudio.core.store_masks import STATE_DIR_NAME, StateLayout, check_shape
from segstudio.core.store_records import (
    ImageRecord,
    ModelVersion,
    Prediction,
    ReconcileReport,
    Status,
    split_for_hash,
    status_of,
)
from segstudio.core.store_schema import DB_NAME, SCHEMA_VERSION, StoreDB
from segstudio.core.store_settings import DEFAULT_VAL_FRACTION, Settings
from segstudio.core.store_versions import ModelVersions
from segstudio.core.task_handle import TaskHandle

__all__ = [
    "DB_NAME",
    "DEFAULT_VAL_FRACTION",
    "LOCKED_MESSAGE",
    "SCHEMA_VERSION",
    "STATE_DIR_NAME",
    "ImageRecord",
    "ModelVersion",
    "Prediction",
    "Project",
    "ReconcileReport",
    "Status",
    "content_hash",
    "split_for_hash",
]


def _checked_image_dir(image_dir: str | os.PathLike[str]) -> Path:
    folder = Path(image_dir).expanduser().absolute()
    if not folder.exists():
        raise ProjectError(f"image folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise ProjectError(f"{folder} is not a folder; open the folder that contains the images")
    try:
        with os.scandir(folder):
            pass
    except OSError as error:
        raise ProjectError(f"cannot read image folder {folder} ({error.strerror or error})") from None
    return folder


def _resolve_state_dir(image_dir: Path, state_dir: str | os.PathLike[str] | None) -> Path:
    if state_dir is not None:
        chosen = Path(state_dir).expanduser().absolute()
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ProjectError(
                f"cannot create the project folder {chosen} ({error.strerror or error}); choose a writable folder"
            ) from None
        if not os.access(chosen, os.W_OK):
            raise ProjectError(f"the project folder {chosen} is not writable; choose a writable folder")
        state_guard.check_state_folder(chosen, sidecar=False)  # the user chose it: only its entries
        return chosen
    sidecar = image_dir / STATE_DIR_NAME
    state_guard.check_state_folder(sidecar, sidecar=True)  # before anything is created or locked
    if sidecar.is_dir() and not os.access(
        sidecar, os.W_OK
    ):  # it exists: the state folder itself is read-only
        raise StateReadOnlyError(
            f"the project state folder {sidecar} is read-only, so SegStudio cannot save there; make it writable, "
            "or choose another project folder for SegStudio's state (`--project-dir DIR` on the command line, "
            "or 'Choose project folder' in the app). `segstudio info` and `export` can still read it"
        )
    try:
        sidecar.mkdir(exist_ok=True)
        if not os.access(sidecar, os.W_OK):
            raise PermissionError("not writable")
    except OSError as error:
        raise ProjectError(
            f"cannot create the project state folder {sidecar} ({getattr(error, 'strerror', None) or error}): "
            "the image folder seems read-only. Choose a project folder for SegStudio's state "
            "(`--project-dir DIR` on the command line, or 'Choose project folder' in the app)"
        ) from None
    return sidecar


class Project:
    """An opened project; use as a context manager or call `close()`. Thread-safe."""

    def __init__(self, image_dir: Path, state_dir: Path) -> None:
        # Use Project.open(); __init__ only stores paths and wires the store modules.
        self.image_dir = image_dir
        self.state_dir = state_dir
        self.layout = StateLayout(state_dir)
        self.masks_dir = self.layout.masks_dir
        self.predictions_dir = self.layout.predictions_dir
        self.predictions_raw_dir = self.layout.predictions_raw_dir
        self.confidence_dir = self.layout.confidence_dir
        self.models_dir = self.layout.models_dir
        self.thumbnails_dir = self.layout.thumbnails_dir
        self._store = StoreDB()
        self._lock = self._store.lock
        self._images = ImageTable(self._store)
        self._settings = Settings(self._store)
        self._versions = ModelVersions(self._store, state_dir)
        self._effort = EffortTable(self._store)
        self._process_lock = ProcessLock(state_dir / LOCK_NAME)
        self._guarded = False  # True while core.state_guard checks writes into state_dir for this project
        self._scheme: LabelScheme | None = None
        self.last_reconcile = ReconcileReport()

    # ---------------------------------------------------------------- opening and closing

    @classmethod
    def open(
        cls,
        image_dir: str | os.PathLike[str],
        state_dir: str | os.PathLike[str] | None = None,
        scheme: LabelScheme | str | None = None,
        handle: TaskHandle | None = None,
        db: str | None = None,
    ) -> Project:
        """Open (creating if needed) the project of `image_dir` and reconcile it with the disk.

        `state_dir` puts the project state elsewhere (required when the image folder is read-only).
        `scheme` is used for a new project (default: Pascal VOC); for an existing project that has
        labels it must match the stored scheme. `db` (postgresql://USER@HOST/DATABASE) joins a team
        project instead: the same API on the team server (segstudio.team; its driver loads only then).
        """
        if db is not None:
            from segstudio.team.project import TeamProject

            return TeamProject.join(image_dir, db, state_dir)
        folder = _checked_image_dir(image_dir)
        state = _resolve_state_dir(folder, state_dir)
        project = cls(folder, state)
        project._process_lock.acquire()
        project._guard()
        try:
            store_schema.connect(project._store, state / DB_NAME, folder, state)
            project._scheme = store_settings.load_scheme(project._store)
            _ = project.val_fraction, project.max_pixels  # hand-edited values stop here, not mid-work
            project.layout.create()
            project._init_scheme(scheme)
            project.layout.remove_stale_temp_files()  # safe: we hold the project lock
            project.reconcile(handle)
        except DamagedProjectError as error:
            project.close()
            raise project._damaged(error, state_dir) from None
        except sqlite3.DatabaseError as error:
            project.close()
            if not store_health.is_damage(error):
                raise
            raise project._damaged(store_health.damage(str(error)), state_dir) from None
        except BaseException:
            project.close()
            raise
        return project

    def _guard(self) -> None:
        """Check every atomic write into the state folder for links while the project is open."""
        state_guard.guard(self.state_dir)
        self._guarded = True

    def _damaged(self, error: DamagedProjectError, chosen: object) -> DamagedProjectError:
        """The damage as one paragraph naming the repair command for this folder."""
        detail = getattr(error, "detail", str(error))
        return DamagedProjectError(
            store_health.repair_hint(
                self.state_dir / DB_NAME,
                detail,
                self.image_dir,
                None if chosen is None else self.state_dir,
                store_health.has_work(self.state_dir),
            )
        )

    @classmethod
    def open_for_reading(
        cls, image_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None
    ) -> Project:
        """Open normally, or read-only when the app has the project open (`read_only` says which).

        For commands that only read (info, export, eval): they work while an annotator keeps the window
        open, on the last saved state, instead of failing on the lock.
        """
        try:
            return cls.open(image_dir, state_dir=state_dir)
        except (ProjectLockedError, StateReadOnlyError):
            return cls.open_read_only(image_dir, state_dir=state_dir)

    @classmethod
    def open_read_only(
        cls, image_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None
    ) -> Project:
        """Look at an existing project without locking, reconciling or writing anything.

        For `segstudio info` while the project is open in the app: shows the last saved state.
        Every writing method raises ProjectError.
        """
        folder = Path(image_dir).expanduser().absolute()
        state = Path(state_dir).expanduser().absolute() if state_dir is not None else folder / STATE_DIR_NAME
        state_guard.check_state_folder(state, sidecar=state_dir is None)
        path = state / DB_NAME
        if not path.is_file():
            raise ProjectError(
                f"there is no SegStudio project for {folder} (no {path}); open the folder once first"
            )
        project = cls(folder, state)
        try:
            store_schema.connect_read_only(project._store, path)
            try:
                project._scheme = store_settings.load_scheme(project._store)
                if project._scheme is None:
                    raise store_health.damage("the label scheme is missing")
                _ = project.val_fraction, project.max_pixels
            except sqlite3.DatabaseError as error:
                if store_health.is_damage(error):
                    raise store_health.damage(str(error)) from None
                raise ProjectError(f"cannot read project database {path}: {error}") from None
        except DamagedProjectError as error:
            project.close()
            raise project._damaged(error, state_dir) from None
        except BaseException:
            project.close()
            raise
        return project

    def close(self) -> None:
        """Close the database and release the project lock (idempotent)."""
        with self._lock:
            self._store.close()
            self._process_lock.release()
            if self._guarded:
                self._guarded = False
                state_guard.unguard(self.state_dir)

    @property
    def closed(self) -> bool:
        return self._store.conn is None

    @property
    def read_only(self) -> bool:
        return self._store.read_only

    def __enter__(self) -> Project:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() must not keep the lock for the process lifetime
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.image_dir)!r}, state_dir={str(self.state_dir)!r})"

    @property
    def _db(self) -> sqlite3.Connection:
        return self._store.db

    @property
    def schema_version(self) -> int:
        return self._store.schema_version

    # ---------------------------------------------------------------- scheme and settings

    def _init_scheme(self, requested: LabelScheme | str | None) -> None:
        self._scheme = store_settings.load_scheme(self._store)
        if self._scheme is None and self._has_labels():  # never VOC by default over existing masks
            raise store_health.damage("the label scheme is missing although masks or statuses exist")
        chosen = store_settings.choose_scheme(self._scheme, requested, self._has_labels)
        if chosen is not None:
            self.set_scheme(chosen)

    def _has_labels(self) -> bool:
        return bool(self._images.count("status != 'new'")) or self.layout.has_any_mask()

    @property
    def scheme(self) -> LabelScheme:
        assert self._scheme is not None
        return self._scheme

    def set_scheme(self, scheme: LabelScheme | str) -> None:
        """Replace the label scheme (the caller confirms with the user; mask indices are kept as they are)."""
        if isinstance(scheme, str):
            scheme = get_scheme(scheme)
        if not isinstance(scheme, LabelScheme):
            raise SchemeError(f"expected a LabelScheme, got {type(scheme).__name__}")
        with self._lock:
            self._store.set_meta("scheme", scheme.to_dict())
            self._scheme = scheme

    def get_setting(self, key: str, default: Any = None) -> Any:
        return self._settings.get(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value.

        Two keys act at once: `val_fraction` (0..1) re-assigns every split; `max_pixels` (the
        decompression-bomb cap, null = none) re-reads the images currently marked unreadable.
        """
        self._settings.set(key, value)
        if key == "max_pixels":
            self.reconcile()

    @property
    def val_fraction(self) -> float:
        return self._settings.val_fraction

    @property
    def max_pixels(self) -> int | None:
        return self._settings.max_pixels

    # ---------------------------------------------------------------- reconciling with the disk

    def reconcile(self, handle: TaskHandle | None = None) -> ReconcileReport:
        """Bring the database in line with the folder (see `store_reconcile`); only new or changed files are read."""
        self._store.check_writable()
        with self._lock:
            report = store_reconcile.reconcile(
                self._store, self.layout, self.image_dir, self.val_fraction, self.max_pixels, handle
            )
            self.last_reconcile = report
            return report

    # ---------------------------------------------------------------- queries

    def images(self, status: Status | str | None = None, split: str | None = None) -> list[ImageRecord]:
        """Live images in natural-sort order, optionally filtered by status and/or split."""
        return self._images.list(status, split)

    def __len__(self) -> int:
        return self._images.count()

    def get(self, rel_path: str) -> ImageRecord | None:
        return self._images.get(rel_path)

    def get_by_id(self, image_id: int) -> ImageRecord | None:
        return self._images.get_by_id(image_id)

    def counts(self) -> dict[Status, int]:
        """Number of live images per status (every status present, zeros included)."""
        return self._images.counts()

    def image_path(self, rec: ImageRecord) -> Path:
        return self.image_dir / rec.rel_path

    def image_file(self, rec: ImageRecord) -> Path:
        """A local file holding the image, for readers of the bytes (thumbnails, export, training). The
        folder's file here; a team project whose images live in the server fetches it first."""
        return self.image_path(rec)

    def needs_fetch(self, rec: ImageRecord) -> bool:
        """Loading the image waits on the network first (a team's image kept in its server and not yet
        on this machine): the window then loads it off its thread. Never for a local project."""
        return False

    def load_image(self, rec: ImageRecord) -> np.ndarray:
        """Decode the image; a file found truncated or corrupt is recorded as unreadable (with its
        reason) before the ImageReadError propagates, so badge, counters, filter and `info` agree."""
        try:
            return image_io.load_image(self.image_path(rec), self.max_pixels)
        except ImageReadError as error:
            self._record_unreadable(rec, error.reason)
            raise

    def _record_unreadable(self, rec: ImageRecord, reason: str) -> None:
        # Memory is a property of this moment, not of the file; a read-only view never writes.
        if self.read_only or reason.startswith("not enough memory") or rec.error == reason:
            return
        with contextlib.suppress(SegStudioError, sqlite3.Error):  # recording must not hide the read error
            self._images.update(rec, error=reason)

    # ---------------------------------------------------------------- masks and predictions

    def mask_path(self, rec: ImageRecord | int) -> Path:
        return self.layout.mask_path(rec)

    def prediction_path(self, rec: ImageRecord | int) -> Path:
        return self.layout.prediction_path(rec)

    def raw_prediction_path(self, rec: ImageRecord | int) -> Path:
        return self.layout.raw_prediction_path(rec)

    def confidence_path(self, rec: ImageRecord | int) -> Path:
        return self.layout.confidence_path(rec)

    def has_mask(self, rec: ImageRecord | int) -> bool:
        return self.mask_path(rec).is_file()

    def has_prediction(self, rec: ImageRecord | int) -> bool:
        return self.prediction_path(rec).is_file()

    def load_mask(self, rec: ImageRecord) -> np.ndarray | None:
        """The corrected mask, or None if the user has not saved one."""
        return self.layout.load_mask(rec)

    def save_mask(
        self, rec: ImageRecord, mask: np.ndarray, status: Status | str = Status.IN_PROGRESS
    ) -> ImageRecord:
        """Save the corrected mask (atomically, file first, then the row) and set the status."""
        status = status_of(status)
        self._store.check_writable()
        with self._lock:
            current = self._images.require(rec)
            check_shape(current, mask, "the mask")
            mask_io.save_mask(self.mask_path(current), mask, current.content_hash)
            return self._images.update(current, status=status.value)

    def delete_mask(self, rec: ImageRecord, status: Status | str | None = None) -> ImageRecord:
        """Remove the corrected mask (e.g. 'reset to prediction'); status becomes `status` or predicted/new."""
        self._store.check_writable()
        with self._lock:
            current = self._images.require(rec)
            with contextlib.suppress(FileNotFoundError):
                self.mask_path(current).unlink()
            if status is None:
                status = Status.PREDICTED if self.has_prediction(current) else Status.NEW
            return self.set_status(current, status)

    def load_prediction(self, rec: ImageRecord) -> Prediction | None:
        """The stored model prediction, or None if the image has never been predicted."""
        return self.layout.load_prediction(rec)

    def save_prediction(
        self,
        rec: ImageRecord,
        labels: np.ndarray,
        confidence: np.ndarray,
        model_version: str,
        raw_labels: np.ndarray | None = None,
    ) -> ImageRecord:
        """Store a model prediction apart from the corrected mask (which is never touched).

        A `new` image becomes `predicted`; other statuses are kept. The labels file is written last,
        so a prediction is visible only once its confidence (and raw labels) are complete.
        """
        self._store.check_writable()
        with self._lock:
            current = self._images.require(rec)
            mean_conf = self.layout.write_prediction(current, labels, confidence, raw_labels)
            status = Status.PREDICTED if current.status == Status.NEW else current.status
            return self._images.update(
                current, status=status.value, model_version=model_version, mean_confidence=mean_conf
            )

    def set_status(self, rec: ImageRecord, status: Status | str) -> ImageRecord:
        return self._images.update(rec, status=status_of(status).value)

    def set_split(self, rec: ImageRecord, split: str) -> ImageRecord:
        """Pin one image's split (an imported dataset keeps its own train/val lists).

        The pin holds until the file's content changes or `val_fraction` re-assigns every split.
        """
        if split not in ("train", "val"):
            raise ProjectError(f"unknown split {split!r}; choose 'train' or 'val'")
        return self._images.update(rec, split=split)

    # ---------------------------------------------------------------- effort telemetry

    def add_effort(
        self, rec: ImageRecord, seconds: float, actions: dict[str, int], changed_fraction: float | None = None
    ) -> None:
        """Add an editing session's active seconds and actions per tool to the image's totals."""
        self._effort.add(rec.id, seconds, actions, changed_fraction)

    def effort_rows(self) -> list[EffortRow]:
        return self._effort.rows()

    # ---------------------------------------------------------------- model versions

    def add_model_version(
        self,
        version: str,
        checkpoint_path: str | os.PathLike[str],
        arch: str,
        metrics: dict[str, Any] | None = None,
        parent: str | None = None,
    ) -> ModelVersion:
        """Record a fine-tuned checkpoint; paths inside the state folder are stored relative to it."""
        return self._versions.add(version, checkpoint_path, arch, metrics, parent)

    def model_versions(self) -> list[ModelVersion]:
        """All recorded versions, oldest first."""
        return self._versions.all()

    def get_model_version(self, version: str) -> ModelVersion | None:
        return self._versions.get(version)

    def next_version_name(self) -> str:
        return self._versions.next_name()

    def active_model_version(self) -> ModelVersion | None:
        name = self.get_setting("active_model_version")
        return None if name is None else self.get_model_version(name)

    def set_active_model_version(self, version: str | None) -> None:
        if version is not None and self.get_model_version(version) is None:
            known = ", ".join(v.version for v in self.model_versions()) or "none yet"
            raise ProjectError(f"unknown model version {version!r}; known versions: {known}")
        self.set_setting("active_model_version", version)

    # ---------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        """Plain-data overview for `segstudio info` and the GUI's status bar."""
        counts = self.counts()
        unreadable = self._images.count("error IS NOT NULL")
        splits = self._images.split_counts()
        active = self.active_model_version()
        return {
            "image_dir": str(self.image_dir),
            "state_dir": str(self.state_dir),
            "images": sum(counts.values()),
            "status": {s.value: n for s, n in counts.items()},
            "unreadable": int(unreadable),
            "split": {"train": int(splits.get("train", 0)), "val": int(splits.get("val", 0))},
            "val_fraction": self.val_fraction,
            "scheme": {"name": self.scheme.name, "classes": self.scheme.names},
            "model_versions": [v.version for v in self.model_versions()],
            "active_model_version": None if active is None else active.version,
            "schema_version": self.schema_version,
        }
