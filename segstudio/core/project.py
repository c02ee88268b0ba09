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

Files are keyed by the image's stable database id, so a rename on disk (recognised by content
hash on the next open) only updates one row and every file follows. Mask files are written
before the database row that refers to them, each atomically, so a crash at any moment leaves
either the old or the new state; `has_mask` looks at the file itself, never at a flag that
could disagree with it.

Reopening must be fast for large folders: unchanged files (same size and mtime_ns as stored)
are not read; only new or changed files are hashed (BLAKE2b of the bytes) and their headers read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from segstudio.core import images as image_io
from segstudio.core import masks as mask_io
from segstudio.core.atomic import TEMP_SUFFIX
from segstudio.core.errors import ImageReadError, MaskError, ProjectError, ProjectLockedError, SchemeError
from segstudio.core.natural_sort import natural_key
from segstudio.core.scan import FileStat, scan_images
from segstudio.core.schemes import LabelScheme, get_scheme, voc_scheme
from segstudio.core.tasks import TaskHandle

__all__ = [
    "Status",
    "ImageRecord",
    "Prediction",
    "ModelVersion",
    "ReconcileReport",
    "Project",
    "STATE_DIR_NAME",
    "SCHEMA_VERSION",
    "LOCKED_MESSAGE",
    "content_hash",
    "split_for_hash",
]

STATE_DIR_NAME = ".segstudio"
DB_NAME = "project.db"
LOCK_NAME = "lock"
LOCKED_MESSAGE = "project is open in another SegStudio window"
DEFAULT_VAL_FRACTION = 0.2
_HASH_CHUNK = 1 << 20


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


def content_hash(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-128 of the file bytes, hex (fast, and collisions are not a practical concern)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def split_for_hash(hash_hex: str, val_fraction: float) -> str:
    """'val' for a stable pseudo-random `val_fraction` of contents, else 'train'.

    Keyed by content hash so a renamed or duplicated file keeps (and shares) its split:
    no image can leak from val into train by being copied.
    """
    value = int.from_bytes(hashlib.blake2b(hash_hex.encode("ascii"), digest_size=8).digest(), "big")
    return "val" if value / 2.0**64 < val_fraction else "train"


# --------------------------------------------------------------------------------------------
# Schema and migrations. PRAGMA user_version holds the schema version; MIGRATIONS[n] upgrades a
# database from version n to n + 1 inside one transaction. Never edit a released migration:
# append a new one and bump SCHEMA_VERSION.

def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE images (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            rel_path TEXT NOT NULL,
            sort_key TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            width INTEGER,
            height INTEGER,
            content_hash TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            split TEXT NOT NULL,
            model_version TEXT,
            mean_confidence REAL,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            removed_at REAL
        );
        CREATE UNIQUE INDEX images_live_path ON images(rel_path) WHERE removed_at IS NULL;
        CREATE INDEX images_order ON images(sort_key, rel_path);
        CREATE INDEX images_hash ON images(content_hash);
        CREATE TABLE model_versions (
            version TEXT PRIMARY KEY,
            checkpoint_path TEXT NOT NULL,
            arch TEXT NOT NULL,
            metrics TEXT NOT NULL,
            parent TEXT,
            created_at REAL NOT NULL
        );
        """
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1]
SCHEMA_VERSION = len(MIGRATIONS)

_IMAGE_COLUMNS = (
    "id, rel_path, width, height, content_hash, status, split, model_version, mean_confidence, error, "
    "created_at, updated_at"
)


def _status(value: Status | str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise ProjectError(
            f"unknown image status {value!r}; use one of: {', '.join(s.value for s in Status)}"
        ) from None


_STATUS_BY_VALUE = {status.value: status for status in Status}


def _record(row: tuple[Any, ...]) -> ImageRecord:
    fields = list(row)
    fields[5] = _STATUS_BY_VALUE[row[5]]
    return ImageRecord(*fields)


# --------------------------------------------------------------------------------------------
# Single-process lock


class _ProcessLock:
    """An exclusive advisory lock on a file, released on close and by the OS when the process dies."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle: Any = None

    def acquire(self) -> None:
        handle = open(self._path, "a+b")  # noqa: SIM115 - kept open while the lock is held
        try:
            if os.name == "nt":  # pragma: no cover - exercised on Windows only
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ProjectLockedError(
                f"{LOCKED_MESSAGE}: close it there first (project state: {self._path.parent})"
            ) from None
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            if os.name == "nt":  # pragma: no cover
                import msvcrt

                self._handle.seek(0)
                msvcrt.locking(self._handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


# --------------------------------------------------------------------------------------------


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
        return chosen
    sidecar = image_dir / STATE_DIR_NAME
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
        # Use Project.open(); __init__ only stores paths.
        self.image_dir = image_dir
        self.state_dir = state_dir
        self.masks_dir = state_dir / "masks"
        self.predictions_dir = state_dir / "predictions"
        self.predictions_raw_dir = state_dir / "predictions_raw"
        self.confidence_dir = state_dir / "confidence"
        self.models_dir = state_dir / "models"
        self.thumbnails_dir = state_dir / "thumbnails"
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._process_lock = _ProcessLock(state_dir / LOCK_NAME)
        self._scheme: LabelScheme | None = None
        self.read_only = False
        self.last_reconcile = ReconcileReport()

    # ---------------------------------------------------------------- opening and closing

    @classmethod
    def open(
        cls,
        image_dir: str | os.PathLike[str],
        state_dir: str | os.PathLike[str] | None = None,
        scheme: LabelScheme | str | None = None,
        handle: TaskHandle | None = None,
    ) -> Project:
        """Open (creating if needed) the project of `image_dir` and reconcile it with the disk.

        `state_dir` puts the project state elsewhere (required when the image folder is read-only).
        `scheme` is used for a new project (default: Pascal VOC); for an existing project that has
        labels it must match the stored scheme.
        """
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
        state = _resolve_state_dir(folder, state_dir)
        project = cls(folder, state)
        project._process_lock.acquire()
        try:
            project._open_db()
            project._init_scheme(scheme)
            project._remove_stale_temp_files()
            project.reconcile(handle)
        except BaseException:
            project.close()
            raise
        return project

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
        except ProjectLockedError:
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
        path = state / DB_NAME
        if not path.is_file():
            raise ProjectError(f"there is no SegStudio project for {folder} (no {path}); open the folder once first")
        project = cls(folder, state)
        project.read_only = True
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
            project._conn = conn
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise ProjectError(
                    f"the project uses schema {version} but this SegStudio reads schema {SCHEMA_VERSION}; "
                    "open it normally (not read-only) with the matching SegStudio version"
                )
            project._scheme = LabelScheme.from_dict(project._get_meta("scheme"))
        except sqlite3.DatabaseError as error:
            project.close()
            raise ProjectError(f"cannot read project database {path}: {error}") from None
        except BaseException:
            project.close()
            raise
        return project

    def _open_db(self) -> None:
        path = self.state_dir / DB_NAME
        try:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        except sqlite3.Error as error:
            raise ProjectError(f"cannot open project database {path}: {error}") from None
        self._conn = conn
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a process crash never loses a commit; power loss may drop the last
            # few, but never corrupts the database.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.OperationalError as error:
            raise ProjectError(f"cannot open project database {path}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise ProjectError(
                f"the project database {path} is damaged ({error}); move the folder {self.state_dir} "
                "away to start over, or restore it from a backup"
            ) from None
        for folder in (self.masks_dir, self.predictions_dir, self.predictions_raw_dir, self.confidence_dir,
                       self.models_dir, self.thumbnails_dir):  # fmt: skip
            folder.mkdir(exist_ok=True)

    def _migrate(self) -> None:
        conn = self._db
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"this project was saved by a newer SegStudio (schema {version}, this version reads up to "
                f"{SCHEMA_VERSION}); update SegStudio to open it"
            )
        while version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
                if version == 0:
                    conn.execute(
                        "INSERT INTO meta(key, value) VALUES ('created_at', ?), ('image_dir', ?)",
                        (json.dumps(time.time()), json.dumps(str(self.image_dir))),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            version += 1
        stored = self._get_meta("image_dir")
        if stored is not None and self.state_dir.name != STATE_DIR_NAME and Path(stored) != self.image_dir:
            if Path(stored).exists():
                raise ProjectError(
                    f"the project folder {self.state_dir} belongs to the image folder {stored}; "
                    "choose another project folder for this image folder"
                )
        if stored is None or Path(stored) != self.image_dir:
            self._set_meta("image_dir", str(self.image_dir))

    def close(self) -> None:
        """Close the database and release the project lock (idempotent)."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
                self._conn.close()
                self._conn = None
            self._process_lock.release()

    @property
    def closed(self) -> bool:
        return self._conn is None

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

    # ---------------------------------------------------------------- database helpers

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ProjectError("the project is closed; open it again")
        return self._conn

    def _check_writable(self) -> None:
        if self.read_only:
            raise ProjectError("this project was opened read-only; open it normally to change it")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._check_writable()
        with self._lock:
            conn = self._db
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _get_meta(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a killed writer; safe to delete because we hold the project lock."""
        for folder in (self.state_dir, self.masks_dir, self.predictions_dir, self.predictions_raw_dir,
                       self.confidence_dir, self.models_dir):  # fmt: skip
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.endswith(TEMP_SUFFIX):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)

    # ---------------------------------------------------------------- scheme and settings

    def _init_scheme(self, requested: LabelScheme | str | None) -> None:
        if isinstance(requested, str):
            requested = get_scheme(requested)
        stored = self._get_meta("scheme")
        if stored is None:
            self.set_scheme(requested or voc_scheme())
            return
        try:
            current = LabelScheme.from_dict(stored)
        except SchemeError as error:
            raise ProjectError(f"the project's stored label scheme is invalid: {error}") from None
        self._scheme = current
        if requested is not None and requested != current:
            if self._has_labels():
                raise ProjectError(
                    f"this project already uses the label scheme {current.name!r} and has labels; "
                    f"open it without choosing a scheme, or change the scheme inside the project"
                )
            self.set_scheme(requested)

    def _has_labels(self) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM images WHERE removed_at IS NULL AND status != 'new'"
            ).fetchone()
        if row[0]:
            return True
        with contextlib.suppress(OSError):
            return any(name.endswith(".png") for name in os.listdir(self.masks_dir))
        return False

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
            self._set_meta("scheme", scheme.to_dict())
            self._scheme = scheme

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value.

        Two keys act at once: `val_fraction` (0..1) re-assigns every split; `max_pixels` (the
        decompression-bomb cap, null = none) re-reads the images currently marked unreadable.
        """
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as error:
            raise ProjectError(f"setting {key!r} must be JSON-serialisable: {error}") from None
        if key == "max_pixels" and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ProjectError(f"max_pixels must be a positive whole number (or null for no limit), got {value!r}")
        if key == "val_fraction":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ProjectError(f"val_fraction must be a number between 0 and 1, got {value!r}")
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )
            if key == "max_pixels":  # images the new cap may affect count as changed: reconcile reads them again
                conn.execute(
                    "UPDATE images SET mtime_ns = -1 WHERE removed_at IS NULL AND "
                    "(error IS NOT NULL OR (? IS NOT NULL AND width * height > ?))",
                    (value, value),
                )
            if key == "val_fraction":
                rows = conn.execute("SELECT id, content_hash FROM images").fetchall()
                conn.executemany(
                    "UPDATE images SET split = ? WHERE id = ?",
                    [(split_for_hash(h, float(value)), i) for i, h in rows],
                )
        if key == "max_pixels":
            self.reconcile()

    @property
    def val_fraction(self) -> float:
        return float(self.get_setting("val_fraction", DEFAULT_VAL_FRACTION))

    @property
    def max_pixels(self) -> int | None:
        value = self.get_setting("max_pixels", image_io.DEFAULT_MAX_PIXELS)
        return None if value is None else int(value)

    # ---------------------------------------------------------------- reconciling with the disk

    def _probe(self, stat: FileStat, max_pixels: int | None) -> tuple[str, int | None, int | None, str | None]:
        """(hash, width, height, error) of one file; reads the bytes once and the header once.

        Runs on worker threads while `reconcile` holds the project lock: it must not touch the DB.
        """
        path = self.image_dir / stat.rel_path
        try:
            digest = content_hash(path)
        except OSError as error:
            return ("", None, None, f"cannot read file ({error.strerror or error})")
        try:
            width, height = image_io.read_image_size(path, max_pixels)
        except ImageReadError as error:
            return (digest, None, None, error.reason)
        return (digest, width, height, None)

    def _probe_all(self, stats: list[FileStat], handle: TaskHandle | None) -> list[tuple[str, int | None, int | None, str | None]]:
        if not stats:
            return []
        if handle is not None:
            handle.set_status(f"reading {len(stats)} new or changed images")
        results: list[tuple[str, int | None, int | None, str | None]] = []
        max_pixels = self.max_pixels
        workers = min(8, (os.cpu_count() or 2) * 2) if len(stats) > 16 else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:  # hashing and file I/O release the GIL
            for done, result in enumerate(pool.map(lambda s: self._probe(s, max_pixels), stats), start=1):
                results.append(result)
                if handle is not None and (done % 64 == 0 or done == len(stats)):
                    handle.set_progress(done, len(stats))
                    handle.check_cancelled()
        return results

    def reconcile(self, handle: TaskHandle | None = None) -> ReconcileReport:
        """Bring the database in line with the folder: added, removed, changed, renamed (by content hash).

        Records follow content, not names: a file whose content turns up under another path (a
        rename, a move, two names swapped, a renumbered sequence) takes its record, masks and status
        along. A path whose content changed and matches no other record is an in-place edit and keeps
        its record. Removed images keep their row (marked removed) and files, so an image that comes
        back, even under another name, gets its masks back. Only new or changed files are read.
        """
        self._check_writable()
        with self._lock:
            exclude = (self.state_dir,) if self.state_dir.name != STATE_DIR_NAME else ()
            on_disk = scan_images(self.image_dir, exclude=exclude)
            rows = self._db.execute(
                "SELECT id, rel_path, size, mtime_ns, content_hash, width, height FROM images WHERE removed_at IS NULL"
            ).fetchall()
            known = {row[1]: row for row in rows}
            report = ReconcileReport()
            touched = [s for p, s in on_disk.items() if p in known and (known[p][2], known[p][3]) != (s.size, s.mtime_ns)]
            new = [s for p, s in on_disk.items() if p not in known]
            missing = [row for p, row in known.items() if p not in on_disk]
            if not touched and not new and not missing:
                self.last_reconcile = report
                return report
            probed = dict(zip([s.rel_path for s in touched + new], self._probe_all(touched + new, handle), strict=True))
            now = time.time()
            val_fraction = self.val_fraction

            # Content that left its path (sources) and paths whose content needs a record (targets).
            edited = [s for s in touched if probed[s.rel_path][0] and probed[s.rel_path][0] != known[s.rel_path][4]]
            edited_paths = {s.rel_path for s in edited}
            sources: dict[str, list[tuple[Any, ...]]] = {}
            for row in sorted(missing + [known[p] for p in edited_paths], key=lambda r: (natural_key(r[1]), r[1])):
                sources.setdefault(row[4], []).append(row)
            targets = sorted(edited + new, key=lambda s: (natural_key(s.rel_path), s.rel_path))
            moves: list[tuple[tuple[Any, ...], FileStat]] = []
            for stat in targets:
                candidates = [r for r in sources.get(probed[stat.rel_path][0], []) if r[1] != stat.rel_path]
                if candidates:
                    row = candidates[0]
                    sources[row[4]].remove(row)
                    moves.append((row, stat))
            moved_ids = {row[0] for row, _ in moves}
            moved_targets = {stat.rel_path for _, stat in moves}

            with self._transaction() as conn:
                # Records whose content is gone while another record's content now sits at their path.
                for stat in edited:
                    row = known[stat.rel_path]
                    if stat.rel_path in moved_targets and row[0] not in moved_ids:
                        conn.execute("UPDATE images SET removed_at=? WHERE id=?", (now, row[0]))
                        report.removed.append(row[1])
                # Two phases, so a swap never violates the unique live path.
                for row, _ in moves:
                    conn.execute("UPDATE images SET rel_path=? WHERE id=?", (f"\x00moving/{row[0]}", row[0]))
                for row, stat in moves:
                    digest, width, height, error = probed[stat.rel_path]
                    conn.execute(
                        "UPDATE images SET rel_path=?, sort_key=?, size=?, mtime_ns=?, width=?, height=?, error=?, "
                        "updated_at=? WHERE id=?",
                        (stat.rel_path, natural_key(stat.rel_path), stat.size, stat.mtime_ns, width, height, error,
                         now, row[0]),
                    )  # fmt: skip
                    report.renamed.append((row[1], stat.rel_path))
                for stat in touched:
                    row = known[stat.rel_path]
                    if stat.rel_path in moved_targets or row[0] in moved_ids:
                        continue  # took another record / its record went elsewhere (handled below as new)
                    self._update_in_place(conn, row, stat, probed[stat.rel_path], now, val_fraction, report)
                for stat in targets:
                    if stat.rel_path in moved_targets:
                        continue
                    if stat.rel_path in edited_paths and known[stat.rel_path][0] not in moved_ids:
                        continue  # an in-place edit, done above
                    self._add_or_revive(conn, stat, probed[stat.rel_path], now, val_fraction, report)
                for row in missing:
                    if row[0] not in moved_ids:
                        conn.execute("UPDATE images SET removed_at=? WHERE id=?", (now, row[0]))
                        report.removed.append(row[1])
            self.last_reconcile = report
            return report

    def _update_in_place(
        self,
        conn: sqlite3.Connection,
        row: tuple[Any, ...],
        stat: FileStat,
        probe: tuple[str, int | None, int | None, str | None],
        now: float,
        val_fraction: float,
        report: ReconcileReport,
    ) -> None:
        """Same path, same record: touched or edited. Masks that no longer fit are moved aside."""
        digest, width, height, error = probe
        digest = digest or row[4]
        # Only new content gets a new split: a touched file keeps a split pinned by set_split().
        # (SQLite evaluates every right-hand side against the row as it was before this UPDATE.)
        conn.execute(
            "UPDATE images SET size=?, mtime_ns=?, width=?, height=?, content_hash=?, "
            "split = CASE WHEN content_hash = ? THEN split ELSE ? END, error=?, updated_at=? WHERE id=?",
            (stat.size, stat.mtime_ns, width, height, digest, digest, split_for_hash(digest, val_fraction), error,
             now, row[0]),
        )  # fmt: skip
        report.changed.append(stat.rel_path)
        if width is not None and row[5] is not None and (width, height) != (row[5], row[6]):
            self._move_to_stale(row[0], now)
            conn.execute(
                "UPDATE images SET status='new', model_version=NULL, mean_confidence=NULL WHERE id=?", (row[0],)
            )
            report.invalidated.append(stat.rel_path)

    def _add_or_revive(
        self,
        conn: sqlite3.Connection,
        stat: FileStat,
        probe: tuple[str, int | None, int | None, str | None],
        now: float,
        val_fraction: float,
        report: ReconcileReport,
    ) -> None:
        """A path that needs a record: bring back a removed one with this content, or create one."""
        digest, width, height, error = probe
        revived = None
        if digest:
            revived = conn.execute(
                "SELECT id FROM images WHERE removed_at IS NOT NULL AND content_hash=? "
                "ORDER BY (rel_path = ?) DESC, removed_at DESC LIMIT 1",
                (digest, stat.rel_path),
            ).fetchone()
        if revived is not None:
            conn.execute(
                "UPDATE images SET rel_path=?, sort_key=?, size=?, mtime_ns=?, width=?, height=?, error=?, "
                "updated_at=?, removed_at=NULL WHERE id=?",
                (stat.rel_path, natural_key(stat.rel_path), stat.size, stat.mtime_ns, width, height, error, now,
                 revived[0]),
            )  # fmt: skip
            report.restored.append(stat.rel_path)
            return
        digest = digest or hashlib.blake2b(stat.rel_path.encode(), digest_size=16).hexdigest()
        conn.execute(
            "INSERT INTO images(rel_path, sort_key, size, mtime_ns, width, height, content_hash, status, split, error, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?)",
            (stat.rel_path, natural_key(stat.rel_path), stat.size, stat.mtime_ns, width, height, digest,
             split_for_hash(digest, val_fraction), error, now, now),
        )  # fmt: skip
        report.added.append(stat.rel_path)

    def _move_to_stale(self, image_id: int, now: float) -> None:
        """Keep (never delete) masks of an image whose file changed size: they no longer line up."""
        target = self.state_dir / "stale" / f"{image_id}-{int(now)}"
        for kind, path in (("mask", self.mask_path(image_id)), ("prediction", self.prediction_path(image_id)),
                           ("prediction_raw", self.raw_prediction_path(image_id)),
                           ("confidence", self.confidence_path(image_id))):  # fmt: skip
            if path.is_file():
                target.mkdir(parents=True, exist_ok=True)
                os.replace(path, target / f"{kind}.png")

    # ---------------------------------------------------------------- queries

    def images(self, status: Status | str | None = None, split: str | None = None) -> list[ImageRecord]:
        """Live images in natural-sort order, optionally filtered by status and/or split."""
        sql = f"SELECT {_IMAGE_COLUMNS} FROM images WHERE removed_at IS NULL"
        params: list[Any] = []
        if status is not None:
            sql += " AND status = ?"
            params.append(_status(status).value)
        if split is not None:
            sql += " AND split = ?"
            params.append(split)
        sql += " ORDER BY sort_key, rel_path"
        with self._lock:
            return [_record(row) for row in self._db.execute(sql, params)]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM images WHERE removed_at IS NULL").fetchone()[0])

    def get(self, rel_path: str) -> ImageRecord | None:
        rel_path = rel_path.replace(os.sep, "/")
        with self._lock:
            row = self._db.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE rel_path = ? AND removed_at IS NULL", (rel_path,)
            ).fetchone()
        return None if row is None else _record(row)

    def get_by_id(self, image_id: int) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ? AND removed_at IS NULL", (int(image_id),)
            ).fetchone()
        return None if row is None else _record(row)

    def _require(self, rec: ImageRecord | int) -> ImageRecord:
        image_id = rec if isinstance(rec, int) else rec.id
        current = self.get_by_id(image_id)
        if current is None:
            name = rec.rel_path if isinstance(rec, ImageRecord) else f"#{image_id}"
            raise ProjectError(f"image {name} is no longer part of the project (was it deleted or moved away?)")
        return current

    def counts(self) -> dict[Status, int]:
        """Number of live images per status (every status present, zeros included)."""
        result = {status: 0 for status in Status}
        with self._lock:
            for status, count in self._db.execute(
                "SELECT status, COUNT(*) FROM images WHERE removed_at IS NULL GROUP BY status"
            ):
                result[Status(status)] = count
        return result

    def image_path(self, rec: ImageRecord) -> Path:
        return self.image_dir / rec.rel_path

    def load_image(self, rec: ImageRecord) -> np.ndarray:
        return image_io.load_image(self.image_path(rec), self.max_pixels)

    # ---------------------------------------------------------------- masks and predictions

    def mask_path(self, rec: ImageRecord | int) -> Path:
        return self.masks_dir / f"{rec if isinstance(rec, int) else rec.id}.png"

    def prediction_path(self, rec: ImageRecord | int) -> Path:
        return self.predictions_dir / f"{rec if isinstance(rec, int) else rec.id}.png"

    def raw_prediction_path(self, rec: ImageRecord | int) -> Path:
        return self.predictions_raw_dir / f"{rec if isinstance(rec, int) else rec.id}.png"

    def confidence_path(self, rec: ImageRecord | int) -> Path:
        return self.confidence_dir / f"{rec if isinstance(rec, int) else rec.id}.png"

    def has_mask(self, rec: ImageRecord | int) -> bool:
        return self.mask_path(rec).is_file()

    def has_prediction(self, rec: ImageRecord | int) -> bool:
        return self.prediction_path(rec).is_file()

    def _check_shape(self, rec: ImageRecord, array: np.ndarray, what: str) -> None:
        if rec.shape is not None and np.asarray(array).shape != rec.shape:
            raise MaskError(
                f"{what} for {rec.rel_path} has shape {np.asarray(array).shape} but the image is "
                f"{rec.width}x{rec.height} (expected shape {rec.shape})"
            )

    def load_mask(self, rec: ImageRecord) -> np.ndarray | None:
        """The corrected mask, or None if the user has not saved one."""
        path = self.mask_path(rec)
        if not path.is_file():
            return None
        return mask_io.load_mask(path, rec.shape)

    def save_mask(self, rec: ImageRecord, mask: np.ndarray, status: Status | str = Status.IN_PROGRESS) -> ImageRecord:
        """Save the corrected mask (atomically, file first, then the row) and set the status."""
        status = _status(status)
        self._check_writable()
        with self._lock:
            current = self._require(rec)
            self._check_shape(current, mask, "the mask")
            mask_io.save_mask(self.mask_path(current), mask)
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE images SET status=?, updated_at=? WHERE id=?", (status.value, time.time(), current.id)
                )
            return self._require(current.id)

    def delete_mask(self, rec: ImageRecord, status: Status | str | None = None) -> ImageRecord:
        """Remove the corrected mask (e.g. 'reset to prediction'); status becomes `status` or predicted/new."""
        self._check_writable()
        with self._lock:
            current = self._require(rec)
            with contextlib.suppress(FileNotFoundError):
                self.mask_path(current).unlink()
            if status is None:
                status = Status.PREDICTED if self.has_prediction(current) else Status.NEW
            return self.set_status(current, status)

    def load_prediction(self, rec: ImageRecord) -> Prediction | None:
        """The stored model prediction, or None if the image has never been predicted."""
        path = self.prediction_path(rec)
        if not path.is_file():
            return None
        labels = mask_io.load_mask(path, rec.shape)
        confidence = None
        if self.confidence_path(rec).is_file():
            confidence = mask_io.load_confidence(self.confidence_path(rec), labels.shape)
        raw = None
        if self.raw_prediction_path(rec).is_file():
            raw = mask_io.load_mask(self.raw_prediction_path(rec), labels.shape)
        return Prediction(labels, confidence, raw)

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
        self._check_writable()
        with self._lock:
            current = self._require(rec)
            self._check_shape(current, labels, "the predicted labels")
            self._check_shape(current, confidence, "the confidence map")
            conf = np.asarray(confidence)
            if raw_labels is not None:
                self._check_shape(current, raw_labels, "the raw predicted labels")
            mask_io.save_confidence(self.confidence_path(current), conf)
            if raw_labels is not None:
                mask_io.save_mask(self.raw_prediction_path(current), raw_labels)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.raw_prediction_path(current).unlink()
            mask_io.save_mask(self.prediction_path(current), labels)
            mean_conf = float(conf.mean()) / 255.0 if conf.size else None
            status = Status.PREDICTED if current.status == Status.NEW else current.status
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE images SET status=?, model_version=?, mean_confidence=?, updated_at=? WHERE id=?",
                    (status.value, model_version, mean_conf, time.time(), current.id),
                )
            return self._require(current.id)

    def set_status(self, rec: ImageRecord, status: Status | str) -> ImageRecord:
        status = _status(status)
        with self._lock:
            current = self._require(rec)
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE images SET status=?, updated_at=? WHERE id=?", (status.value, time.time(), current.id)
                )
            return self._require(current.id)

    def set_split(self, rec: ImageRecord, split: str) -> ImageRecord:
        """Pin one image's split (an imported dataset keeps its own train/val lists).

        The pin holds until the file's content changes or `val_fraction` re-assigns every split.
        """
        if split not in ("train", "val"):
            raise ProjectError(f"unknown split {split!r}; choose 'train' or 'val'")
        with self._lock:
            current = self._require(rec)
            with self._transaction() as conn:
                conn.execute("UPDATE images SET split=?, updated_at=? WHERE id=?", (split, time.time(), current.id))
            return self._require(current.id)

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
        if not version or not isinstance(version, str):
            raise ProjectError("a model version needs a name such as 'v3'")
        path = Path(checkpoint_path).absolute()
        try:
            stored = path.relative_to(self.state_dir).as_posix()
        except ValueError:
            stored = str(path)
        created = time.time()
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO model_versions(version, checkpoint_path, arch, metrics, parent, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (version, stored, arch, json.dumps(metrics or {}), parent, created),
                )
        except sqlite3.IntegrityError:
            raise ProjectError(f"model version {version!r} already exists; use next_version_name()") from None
        return ModelVersion(version, path, arch, dict(metrics or {}), parent, created)

    def _model_version(self, row: tuple[Any, ...]) -> ModelVersion:
        path = Path(row[1])
        if not path.is_absolute():
            path = self.state_dir / path
        return ModelVersion(row[0], path, row[2], json.loads(row[3]), row[4], row[5])

    def model_versions(self) -> list[ModelVersion]:
        """All recorded versions, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, checkpoint_path, arch, metrics, parent, created_at FROM model_versions "
                "ORDER BY created_at, rowid"
            ).fetchall()
        return [self._model_version(row) for row in rows]

    def get_model_version(self, version: str) -> ModelVersion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT version, checkpoint_path, arch, metrics, parent, created_at FROM model_versions WHERE version=?",
                (version,),
            ).fetchone()
        return None if row is None else self._model_version(row)

    def next_version_name(self) -> str:
        numbers = [int(m.group(1)) for v in self.model_versions() if (m := re.fullmatch(r"v(\d+)", v.version))]
        return f"v{max(numbers, default=0) + 1}"

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
        with self._lock:
            unreadable = self._db.execute(
                "SELECT COUNT(*) FROM images WHERE removed_at IS NULL AND error IS NOT NULL"
            ).fetchone()[0]
            splits = dict(
                self._db.execute("SELECT split, COUNT(*) FROM images WHERE removed_at IS NULL GROUP BY split").fetchall()
            )
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
