"""Bring the database in line with the image folder: added, removed, changed, renamed.

Records follow content, not names: a file whose content turns up under another path (a rename, a
move, two names swapped, a renumbered sequence) takes its record, masks and status along. A path
whose content changed and matches no other record is an in-place edit and keeps its record. Removed
images keep their row (marked removed) and files, so an image that comes back, even under another
name, gets its masks back.

Reopening must be fast for large folders: unchanged files (same size and mtime_ns as stored) are not
read; only new or changed files are hashed (BLAKE2b of the bytes) and their headers read.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from segstudio.core import images as image_io
from segstudio.core.errors import ImageReadError
from segstudio.core.hashing import content_hash
from segstudio.core.natural_sort import natural_key
from segstudio.core.scan import FileStat, scan_images
from segstudio.core.store_masks import STATE_DIR_NAME, StateLayout
from segstudio.core.store_records import ReconcileReport, db_path, path_from_db, split_for_hash
from segstudio.core.store_schema import StoreDB
from segstudio.core.task_handle import TaskHandle

__all__ = ["Probe", "reconcile"]


class _Known(NamedTuple):
    """A live row as reconcile needs it."""

    id: int
    rel_path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int | None
    height: int | None


_KNOWN_SQL = (
    "SELECT id, rel_path, size, mtime_ns, content_hash, width, height FROM images WHERE removed_at IS NULL"
)


class Probe(NamedTuple):
    """What reading one new or changed file found."""

    digest: str  # "" when the file could not be read at all
    width: int | None
    height: int | None
    error: str | None  # why the image is unreadable, or None


def _probe(path: Path, max_pixels: int | None) -> Probe:
    """Hash and size of one file; reads the bytes once and the header once.

    Runs on worker threads while `reconcile` holds the project lock: it must not touch the DB.
    """
    try:
        digest = content_hash(path)
    except OSError as error:
        return Probe("", None, None, f"cannot read file ({error.strerror or error})")
    try:
        width, height = image_io.read_image_size(path, max_pixels)
    except ImageReadError as error:
        return Probe(digest, None, None, error.reason)
    return Probe(digest, width, height, None)


def _probe_all(
    image_dir: Path, stats: list[FileStat], max_pixels: int | None, handle: TaskHandle | None
) -> list[Probe]:
    if not stats:
        return []
    if handle is not None:
        handle.set_status(f"reading {len(stats)} new or changed images")
    results: list[Probe] = []
    workers = min(8, (os.cpu_count() or 2) * 2) if len(stats) > 16 else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:  # hashing and file I/O release the GIL
        probes = pool.map(lambda s: _probe(image_dir / s.rel_path, max_pixels), stats)
        for done, result in enumerate(probes, start=1):
            results.append(result)
            if handle is not None and (done % 64 == 0 or done == len(stats)):
                handle.set_progress(done, len(stats))
                handle.check_cancelled()
    return results


@dataclass
class _Plan:
    """Which records move where, decided before anything is written."""

    known: dict[str, _Known]
    touched: list[FileStat]  # known path, other size or mtime
    missing: list[_Known]  # known path, gone from disk
    probed: dict[str, Probe]
    edited: list[FileStat]  # touched and the content is different
    targets: list[FileStat]  # paths whose content needs a record (edited + new), in natural order
    moves: list[tuple[_Known, FileStat]]  # a record whose content now sits at another path

    @property
    def edited_paths(self) -> set[str]:
        return {s.rel_path for s in self.edited}

    @property
    def moved_ids(self) -> set[int]:
        return {row.id for row, _ in self.moves}

    @property
    def moved_targets(self) -> set[str]:
        return {stat.rel_path for _, stat in self.moves}


def _plan_moves(
    known: dict[str, _Known],
    touched: list[FileStat],
    new: list[FileStat],
    missing: list[_Known],
    probed: dict[str, Probe],
) -> _Plan:
    """Match content that left its path (sources) with paths whose content needs a record (targets)."""
    edited = [
        s
        for s in touched
        if probed[s.rel_path].digest and probed[s.rel_path].digest != known[s.rel_path].content_hash
    ]
    sources: dict[str, list[_Known]] = {}
    for row in sorted(
        missing + [known[s.rel_path] for s in edited], key=lambda r: (natural_key(r.rel_path), r.rel_path)
    ):
        sources.setdefault(row.content_hash, []).append(row)
    targets = sorted(edited + new, key=lambda s: (natural_key(s.rel_path), s.rel_path))
    moves: list[tuple[_Known, FileStat]] = []
    for stat in targets:
        candidates = [r for r in sources.get(probed[stat.rel_path].digest, []) if r.rel_path != stat.rel_path]
        if candidates:
            row = candidates[0]
            sources[row.content_hash].remove(row)
            moves.append((row, stat))
    return _Plan(known, touched, missing, probed, edited, targets, moves)


@dataclass
class _Writer:
    """Applies a plan inside one transaction and records what it did in `report`."""

    conn: sqlite3.Connection
    layout: StateLayout
    now: float
    val_fraction: float
    report: ReconcileReport

    def apply(self, plan: _Plan) -> None:
        moved_ids, moved_targets, edited_paths = plan.moved_ids, plan.moved_targets, plan.edited_paths
        # Records whose content is gone while another record's content now sits at their path.
        for stat in plan.edited:
            row = plan.known[stat.rel_path]
            if stat.rel_path in moved_targets and row.id not in moved_ids:
                self.remove(row)
        self.move(plan)
        for stat in plan.touched:
            row = plan.known[stat.rel_path]
            if stat.rel_path in moved_targets or row.id in moved_ids:
                continue  # took another record / its record went elsewhere (handled below as new)
            self.update_in_place(row, stat, plan.probed[stat.rel_path])
        for stat in plan.targets:
            if stat.rel_path in moved_targets:
                continue
            if stat.rel_path in edited_paths and plan.known[stat.rel_path].id not in moved_ids:
                continue  # an in-place edit, done above
            self.add_or_revive(stat, plan.probed[stat.rel_path])
        for row in plan.missing:
            if row.id not in moved_ids:
                self.remove(row)

    def remove(self, row: _Known) -> None:
        self.conn.execute("UPDATE images SET removed_at=? WHERE id=?", (self.now, row.id))
        self.report.removed.append(row.rel_path)

    def move(self, plan: _Plan) -> None:
        # Two phases, so a swap never violates the unique live path.
        for row, _ in plan.moves:
            self.conn.execute("UPDATE images SET rel_path=? WHERE id=?", (f"\x00moving/{row.id}", row.id))
        for row, stat in plan.moves:
            self._set_file(row.id, stat, plan.probed[stat.rel_path])
            self.report.renamed.append((row.rel_path, stat.rel_path))

    def _set_file(self, image_id: int, stat: FileStat, probe: Probe, revive: bool = False) -> None:
        self.conn.execute(
            "UPDATE images SET rel_path=?, sort_key=?, size=?, mtime_ns=?, width=?, height=?, error=?, updated_at=?"
            + (", removed_at=NULL" if revive else "") + " WHERE id=?",
            (db_path(stat.rel_path), db_path(natural_key(stat.rel_path)), stat.size, stat.mtime_ns, probe.width,
             probe.height, probe.error, self.now, image_id),
        )  # fmt: skip

    def update_in_place(self, row: _Known, stat: FileStat, probe: Probe) -> None:
        """Same path, same record: touched or edited. Masks that no longer fit are moved aside."""
        digest = probe.digest or row.content_hash
        # Only new content gets a new split: a touched file keeps a split pinned by set_split().
        # (SQLite evaluates every right-hand side against the row as it was before this UPDATE.)
        self.conn.execute(
            "UPDATE images SET size=?, mtime_ns=?, width=?, height=?, content_hash=?, "
            "split = CASE WHEN content_hash = ? THEN split ELSE ? END, error=?, updated_at=? WHERE id=?",
            (stat.size, stat.mtime_ns, probe.width, probe.height, digest, digest,
             split_for_hash(digest, self.val_fraction), probe.error, self.now, row.id),
        )  # fmt: skip
        self.report.changed.append(stat.rel_path)
        if (
            probe.width is not None
            and row.width is not None
            and (probe.width, probe.height) != (row.width, row.height)
        ):
            self.layout.move_to_stale(row.id, self.now)
            self.conn.execute(
                "UPDATE images SET status='new', model_version=NULL, mean_confidence=NULL WHERE id=?",
                (row.id,),
            )
            self.report.invalidated.append(stat.rel_path)

    def add_or_revive(self, stat: FileStat, probe: Probe) -> None:
        """A path that needs a record: bring back a removed one with this content, or create one."""
        revived = None
        if probe.digest:
            revived = self.conn.execute(
                "SELECT id FROM images WHERE removed_at IS NOT NULL AND content_hash=? "
                "ORDER BY (rel_path = ?) DESC, removed_at DESC LIMIT 1",
                (probe.digest, db_path(stat.rel_path)),
            ).fetchone()
        if revived is not None:
            self._set_file(revived[0], stat, probe, revive=True)
            self.report.restored.append(stat.rel_path)
            return
        digest = (
            probe.digest
            or hashlib.blake2b(stat.rel_path.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
        )
        self.conn.execute(
            "INSERT INTO images(rel_path, sort_key, size, mtime_ns, width, height, content_hash, status, split, error, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?)",
            (db_path(stat.rel_path), db_path(natural_key(stat.rel_path)), stat.size, stat.mtime_ns, probe.width,
             probe.height, digest,
             split_for_hash(digest, self.val_fraction), probe.error, self.now, self.now),
        )  # fmt: skip
        self.report.added.append(stat.rel_path)


def reconcile(
    store: StoreDB,
    layout: StateLayout,
    image_dir: Path,
    val_fraction: float,
    max_pixels: int | None,
    handle: TaskHandle | None = None,
) -> ReconcileReport:
    """Scan `image_dir`, read only new or changed files, and update the rows in one transaction."""
    store.check_writable()
    report = ReconcileReport()
    with store.lock:
        exclude = (layout.state_dir,) if layout.state_dir.name != STATE_DIR_NAME else ()
        on_disk = scan_images(image_dir, exclude=exclude)
        rows = (_Known(row[0], path_from_db(row[1]), *row[2:]) for row in store.fetchall(_KNOWN_SQL))
        known = {row.rel_path: row for row in rows}
        touched = [
            s
            for p, s in on_disk.items()
            if p in known and (known[p].size, known[p].mtime_ns) != (s.size, s.mtime_ns)
        ]
        new = [s for p, s in on_disk.items() if p not in known]
        missing = [row for p, row in known.items() if p not in on_disk]
        if not touched and not new and not missing:
            return report
        probes = _probe_all(image_dir, touched + new, max_pixels, handle)
        probed = dict(zip([s.rel_path for s in touched + new], probes, strict=True))
        plan = _plan_moves(known, touched, new, missing, probed)
        with store.transaction() as conn:
            _Writer(conn, layout, time.time(), val_fraction, report).apply(plan)
    return report
