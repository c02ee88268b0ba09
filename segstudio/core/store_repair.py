"""`segstudio repair FOLDER`: rebuild a damaged project database; masks on disk are re-attached.

Why: a damaged database (`core.store_health`) stops every open instead of starting a new project
over the masks. Repair is the way forward, and it never deletes anything:

1. the state folder is checked for links (`core.state_guard`) and locked, as any open does;
2. a copy of `project.db` (and its `-wal`) is salvaged (`core.store_salvage`: the sqlite3 shell's
   `.recover` where it works, else row by row) and every row that still makes sense is written
   into a new database with the current schema; rows or values that do not parse are reported;
3. the damaged file is kept beside it as `project.db.damaged-<time>` (with its `-wal`/`-shm`);
4. mask, prediction and confidence files whose image row was lost are moved aside into
   `stale/repair-<time>/`; after the normal open (which finds the folder's images again), each
   mask saved with its image's content hash (`core.masks.IMAGE_HASH_KEY`) goes back to that image
   as `in progress`; the rest stay in `stale/repair-<time>/` and are listed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segstudio.core import masks as mask_io
from segstudio.core import state_guard, store_schema
from segstudio.core.atomic import fsync_dir
from segstudio.core.errors import MaskError, ProjectError, SchemeError
from segstudio.core.schemes import LabelScheme, get_scheme
from segstudio.core.store_lock import LOCK_NAME, ProcessLock
from segstudio.core.store_masks import STATE_DIR_NAME
from segstudio.core.store_records import Status
from segstudio.core.store_salvage import Salvage, salvage
from segstudio.core.store_settings import _validate

__all__ = ["RepairReport", "repair_project"]

_DB = store_schema.DB_NAME
_SUFFIXES = ("", "-wal", "-shm", "-journal")
_FILE_KINDS = ("masks", "predictions", "predictions_raw", "confidence")
_NUMBERED = re.compile(r"^(\d+)\.png$")
_STATUSES = {s.value for s in Status}
_IMAGE_COLUMNS = ("id", "rel_path", "sort_key", "size", "mtime_ns", "width", "height", "content_hash", "status",
                  "split", "model_version", "mean_confidence", "error", "created_at", "updated_at", "removed_at")  # fmt: skip


@dataclass
class RepairReport:
    """What `repair_project` did, for the CLI to print."""

    method: str
    kept_as: Path | None
    rows: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    reattached: list[str] = field(default_factory=list)
    unattached: list[str] = field(default_factory=list)
    aside: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"salvaged with {self.method}: " + ", ".join(f"{t} {n}" for t, n in self.rows.items())]
        if self.kept_as is not None:
            lines.append(f"the damaged database is kept as {self.kept_as}")
        lines += [f"dropped: {d}" for d in self.dropped]
        if self.reattached:
            lines.append(
                f"{len(self.reattached)} mask(s) re-attached by image content (status: in progress; "
                f"check and mark them done): {', '.join(self.reattached[:10])}{' ...' if len(self.reattached) > 10 else ''}"
            )
        if self.unattached:
            lines.append(
                f"{len(self.unattached)} file(s) could not be matched to an image and are kept in {self.aside}: "
                f"{', '.join(self.unattached[:10])}{' ...' if len(self.unattached) > 10 else ''}"
            )
        lines.append("status now: " + " · ".join(f"{k} {v}" for k, v in self.counts.items()))
        return "\n".join(lines)


# ---------------------------------------------------------------- rows that still make sense


def _json_ok(text: Any) -> bool:
    try:
        json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _good_meta(row: dict[str, Any], report: RepairReport) -> bool:
    key, value = row.get("key"), row.get("value")
    if not isinstance(key, str) or not _json_ok(value):
        report.dropped.append(f"meta entry {key!r} (not valid JSON)")
        return False
    if key == "scheme":
        try:
            LabelScheme.from_dict(json.loads(value))
        except (SchemeError, TypeError, AttributeError, KeyError, ValueError) as error:
            report.dropped.append(f"the stored label scheme ({error})")
            return False
    return key not in ("image_dir",)  # written afresh for this folder


def _good_setting(row: dict[str, Any], report: RepairReport) -> bool:
    key, value = row.get("key"), row.get("value")
    try:
        if not isinstance(key, str):
            raise ProjectError("no key")
        _validate(key, json.loads(value))
    except (ProjectError, TypeError, ValueError, RecursionError):
        report.dropped.append(f"setting {key!r} = {value!r} (not a valid value; the default applies)")
        return False
    return True


def _good_image(row: dict[str, Any]) -> bool:
    return (
        isinstance(row.get("id"), int)
        and isinstance(row.get("rel_path"), str)
        and isinstance(row.get("content_hash"), str)
        and row.get("status") in _STATUSES
        and row.get("split") in ("train", "val")
        and all(isinstance(row.get(c), int) for c in ("size", "mtime_ns"))
        and all(isinstance(row.get(c), (int, float)) for c in ("created_at", "updated_at"))
    )


def _insert(
    conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]], columns: tuple[str, ...]
) -> int:
    sql = f"INSERT OR IGNORE INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    done = 0
    for row in rows:
        with contextlib.suppress(sqlite3.Error):
            done += conn.execute(sql, tuple(row.get(c) for c in columns)).rowcount
    return done


def _rebuild(found: Salvage, new_db: Path, image_dir: Path, state: Path, scheme: LabelScheme | None,
             report: RepairReport) -> set[int]:  # fmt: skip
    """Write the salvaged rows into a new database; the ids of the image rows kept."""
    meta = [r for r in found.tables.get("meta", []) if _good_meta(r, report)]
    settings = [r for r in found.tables.get("settings", []) if _good_setting(r, report)]
    images = [r for r in found.tables.get("images", []) if _good_image(r)]
    bad_images = len(found.tables.get("images", [])) - len(images)
    if bad_images:
        report.dropped.append(f"{bad_images} image row(s) with missing or invalid fields")
    has_scheme = any(r["key"] == "scheme" for r in meta)
    if not has_scheme:
        if scheme is None and any(_numbered_files(state / "masks")):
            raise ProjectError(
                f"the label scheme of {image_dir} could not be recovered, and the masks on disk mean nothing "
                "without it; run repair again with `--scheme NAME` (voc, cityscapes, camvid or the .json file "
                "the project used). Nothing was changed"
            )
        meta.append({"key": "scheme", "value": json.dumps((scheme or get_scheme("voc")).to_dict())})
        report.dropped.append(f"the label scheme was lost; set to {(scheme or get_scheme('voc')).name!r}")
    store = store_schema.StoreDB()
    store_schema.connect(store, new_db, image_dir, state)
    try:
        with store.transaction() as conn:
            conn.execute("DELETE FROM meta WHERE key NOT IN ('image_dir')")
            report.rows["meta"] = _insert(conn, "meta", meta, ("key", "value"))
            report.rows["settings"] = _insert(conn, "settings", settings, ("key", "value"))
            report.rows["images"] = _insert(conn, "images", images, _IMAGE_COLUMNS)
            versions = found.tables.get("model_versions", [])
            report.rows["model_versions"] = _insert(
                conn, "model_versions", versions,
                ("version", "checkpoint_path", "arch", "metrics", "parent", "created_at"),
            )  # fmt: skip
            kept = {r["id"] for r in images}
            effort = [r for r in found.tables.get("effort", []) if r.get("image_id") in kept]
            report.rows["effort"] = _insert(
                conn,
                "effort",
                effort,
                ("image_id", "active_seconds", "actions", "changed_fraction", "updated_at"),
            )
            # New images must not take the number of a file set aside for re-attachment.
            top = max([0, *kept, *(n for kind in _FILE_KINDS for n, _ in _numbered_files(state / kind))])
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'images'")
            conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('images', ?)", (top,))
        kept_ids = {row[0] for row in store.fetchall("SELECT id FROM images")}
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return kept_ids


# ---------------------------------------------------------------- files


def _numbered_files(folder: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [(int(m.group(1)), folder / name) for name in names if (m := _NUMBERED.match(name))]


def _swap_in(state: Path, new_db: Path, stamp: str) -> Path | None:
    """Keep the damaged files as project.db.damaged-<stamp>[-wal/-shm]; put the new one in place."""
    kept = None
    for suffix in _SUFFIXES:
        old = state / f"{_DB}{suffix}"
        if old.exists():
            moved = state / f"{_DB}.damaged-{stamp}{suffix}"
            os.replace(old, moved)
            kept = kept or moved
    os.replace(new_db, state / _DB)
    fsync_dir(state)
    return kept


def _set_aside(state: Path, keep: set[int], aside: Path) -> None:
    for kind in _FILE_KINDS:
        for number, path in _numbered_files(state / kind):
            if number not in keep:
                (aside / kind).mkdir(parents=True, exist_ok=True)
                os.replace(path, aside / kind / path.name)


def _reattach(project: Any, aside: Path, report: RepairReport) -> None:
    """Masks set aside go back to the image whose content hash they were saved with."""
    taken: set[int] = set()
    by_hash: dict[str, list[Any]] = {}
    for rec in project.images():
        by_hash.setdefault(rec.content_hash, []).append(rec)
    for _, path in sorted(_numbered_files(aside / "masks")):
        digest = mask_io.read_image_hash(path)
        for rec in by_hash.get(digest or "", []):
            if rec.id in taken or project.has_mask(rec):
                continue
            try:
                mask_io.load_mask(path, rec.shape)  # it must line up with the image
            except MaskError:
                continue
            os.replace(path, project.mask_path(rec))
            project.set_status(rec, Status.IN_PROGRESS)
            taken.add(rec.id)
            report.reattached.append(rec.rel_path)
            break
    for kind in _FILE_KINDS:
        report.unattached += [f"{kind}/{p.name}" for _, p in sorted(_numbered_files(aside / kind))]
    if not report.unattached:
        shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------- the command


def repair_project(
    image_dir: str | os.PathLike[str],
    state_dir: str | os.PathLike[str] | None = None,
    scheme: LabelScheme | str | None = None,
) -> RepairReport:
    """Salvage the project database of `image_dir` (see the module docstring); never deletes a file."""
    from segstudio.core.project import Project, _checked_image_dir

    if isinstance(scheme, str):
        scheme = get_scheme(scheme)
    folder = _checked_image_dir(image_dir)
    state = Path(state_dir).expanduser().absolute() if state_dir is not None else folder / STATE_DIR_NAME
    state_guard.check_state_folder(state, sidecar=state_dir is None)
    if not state.is_dir():
        raise ProjectError(f"there is no SegStudio project state in {state}; nothing to repair")
    lock = ProcessLock(state / LOCK_NAME)
    lock.acquire()
    state_guard.guard(state)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = RepairReport("nothing to read", None)
    aside = state / "stale" / f"repair-{stamp}"
    try:
        work = Path(tempfile.mkdtemp(prefix=".repair-", dir=state))
        try:
            for suffix in ("", "-wal"):
                source = state / f"{_DB}{suffix}"
                if source.is_file():
                    shutil.copyfile(source, work / f"{_DB}{suffix}")
            found = salvage(work / _DB, work)
            report.method = found.method
            report.dropped += found.notes
            new_db = state / f".{_DB}.repaired-{os.getpid()}"
            for suffix in _SUFFIXES:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{new_db}{suffix}")
            keep = _rebuild(found, new_db, folder, state, scheme, report)
            for suffix in _SUFFIXES[1:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{new_db}{suffix}")
            report.kept_as = _swap_in(state, new_db, stamp)
            _set_aside(state, keep, aside)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        state_guard.unguard(state)
        lock.release()
    with Project.open(folder, state_dir=state_dir) as project:
        if aside.is_dir():
            report.aside = aside
            _reattach(project, aside, report)
        report.counts = {s.value: n for s, n in project.counts().items()}
    return report
