"""TeamProject: the `Project` API on a PostgreSQL server, for a team working on one image folder.

Images stay in the (shared or copied) folder and are found by path relative to it plus content hash;
everything else is on the server (see `team.schema`). This machine keeps only a cache folder
(checkpoints fetched from the server, probabilities, thumbnails, the member's own `gui.*` settings).

What differs from a local project, on purpose:

* Editing takes a lease (`take_lease`), renewed by a heartbeat thread while the project is open, so
  others see "being edited by NAME" and cannot save over it; a crashed client's lease expires.
* `load_mask` remembers the version it returned; `save_mask` stores a new version whose parent is that
  one. If someone saved in between, the server refuses it (StaleSaveError) and nothing is written: the
  caller still has its pixels. Every version is kept (`mask_history`, `restore_mask_version`).
* Reviews (`review`) put a verdict and comment on the current version; only reviewers may, and never
  on their own work. Rights come from the member's database role, enforced by the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from segstudio.core import images as image_io
from segstudio.core.errors import ProjectError, SchemeError
from segstudio.core.hashing import content_hash
from segstudio.core.project import Project, _checked_image_dir
from segstudio.core.schemes import LabelScheme, get_scheme
from segstudio.core.store_records import (
    ImageRecord,
    ReconcileReport,
    Status,
    db_path,
    split_for_hash,
    status_of,
)
from segstudio.core.store_settings import DEFAULT_VAL_FRACTION
from segstudio.team import schema
from segstudio.team.assignments import Assignments
from segstudio.team.connection import connect, describe, require_driver
from segstudio.team.consensus import SEEN_COLUMNS, Consensus, seen_record
from segstudio.team.editing import LEASE_SECONDS, EditingRules, MaskVersion, Review, announce
from segstudio.team.errors import TeamConnectionError, TeamError, TeamPermissionError
from segstudio.team.image_store import QueuePrefetcher, ServerImages, images_in_server
from segstudio.team.outbox import Outbox, SaveConflict
from segstudio.team.removal import Removal
from segstudio.team.server_paths import server_named_path
from segstudio.team.team_data import TeamData

__all__ = ["LEASE_SECONDS", "MaskVersion", "Review", "TeamProject", "cache_dir_for", "list_stamp"]

#: Settings with this prefix are the member's own (window layout, last image): kept on this machine.
LOCAL_SETTING_PREFIX = "gui."

T = TypeVar("T")

#: Distinct read queries whose last answer is remembered for while the server is away.
LAST_READS = 512
#: After the server was found away, reads answer from memory for this long before trying it again
#: (so the window does not wait on a connection attempt at every repaint).
AWAY_SECONDS = 2.0


def list_stamp(records: Sequence[ImageRecord]) -> tuple[int, int, int]:
    """What `TeamProject.image_list_stamp` answers for a list of live records (the window compares)."""
    ids = [int(r.id) for r in records]
    return (len(ids), max(ids, default=0), sum(ids))


def cache_dir_for(url: str) -> Path:
    """This machine's cache folder for one team database (never inside the shared image folder)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "segstudio" / "team"
    key = hashlib.blake2b(describe(url).split("@", 1)[-1].encode(), digest_size=8).hexdigest()
    return base / key


class TeamProject(Assignments, Consensus, EditingRules, Removal, TeamData, Project):
    """An opened team project; `TeamProject.join(folder, url)`. Thread-safe (one connection, one lock)."""

    def __init__(self, image_dir: Path, state_dir: Path, url: str, conn: Any) -> None:
        super().__init__(image_dir, state_dir)
        self.url = url
        self._conn: Any = conn
        self._lock = threading.RLock()
        self.member: str = ""
        self.role: str = ""
        self._base: dict[int, int | None] = {}  # image id -> mask version the caller started from
        self._held: set[int] = set()  # image ids whose lease this client holds
        self._hashes: dict[
            int, tuple[int, int]
        ] = {}  # image id -> (size, mtime_ns) checked against the server
        self._local_settings_path = state_dir / "member_settings.json"
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._server_version = 0
        self._only: set[int] | None = None  # limit_to_accepted: images() lists only these
        self._away_until = 0.0
        self._last_reads: dict[tuple[str, str, bool], Any] = {}  # see _read
        self.outbox = Outbox(state_dir)  # saves made while the server was away (team.outbox)
        self.conflicts: list[SaveConflict] = []  # queued saves refused on reconnect, not yet shown
        self.server_images: ServerImages | None = None  # set when the team keeps its images in the server
        self.prefetcher: QueuePrefetcher | None = None

    # ---------------------------------------------------------------- opening and closing

    @classmethod
    def join(
        cls,
        image_dir: str | os.PathLike[str],
        url: str,
        state_dir: str | os.PathLike[str] | None = None,
        heartbeat: bool = True,
    ) -> TeamProject:
        """Open the team project at `url` on the local copy `image_dir` of its images. When the team keeps
        its images in the server, `image_dir` may be empty or not exist yet (it is created): images are
        fetched into this machine's cache as needed, the member's queue ahead in the background."""
        wanted = Path(image_dir).expanduser().absolute()
        conn = connect(url, announces_own_changes=True)
        psycopg = require_driver()
        try:
            version, member, role = _check_database(conn, url)
            stored = images_in_server(conn)
            if stored and not wanted.exists():
                try:
                    wanted.mkdir(parents=True)
                except OSError as error:
                    raise ProjectError(
                        f"cannot create the folder {wanted} ({error.strerror or error})"
                    ) from None
            folder = _checked_image_dir(wanted)
            cache = Path(state_dir).expanduser().absolute() if state_dir is not None else cache_dir_for(url)
            try:
                cache.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ProjectError(
                    f"cannot create the cache folder {cache} ({error.strerror or error})"
                ) from None
            project = cls(folder, cache, url, conn)
        except BaseException:
            conn.close()
            raise
        project.member, project.role, project._server_version = member, role, version
        if stored:
            project.server_images = ServerImages(url, project.state_dir)
        try:
            project.layout.create()
            project._scheme = project._load_scheme()
        except psycopg.Error as error:
            project.close()
            raise TeamError(f"cannot read the team project {describe(url)}: {error}") from None
        except BaseException:
            project.close()
            raise
        with contextlib.suppress(TeamError):
            project.flush_pending()  # saves queued while the server was away, by an earlier session too
        if heartbeat:
            project._heartbeat = threading.Thread(
                target=project._beat, name="team-lease-heartbeat", daemon=True
            )
            project._heartbeat.start()
        return project

    def close(self) -> None:
        """Give back this client's leases and close the connection (idempotent)."""
        self._stop.set()
        if self.prefetcher is not None:
            self.prefetcher.stop()
        if self.server_images is not None:
            self.server_images.close()
        with self._lock:
            if self._conn is None:
                return
            if self._held:
                with contextlib.suppress(Exception):
                    gone = self._conn.execute(
                        "DELETE FROM segstudio.leases WHERE holder = current_user AND image_id = ANY(%s) "
                        "RETURNING image_id",
                        (sorted(self._held),),
                    ).fetchall()
                    announce(self._conn, "leases", [int(r[0]) for r in gone])
            self._held.clear()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def read_only(self) -> bool:
        return False

    @property
    def schema_version(self) -> int:
        return self._server_version

    def __repr__(self) -> str:
        return f"TeamProject({str(self.image_dir)!r}, {describe(self.url)!r})"

    # ---------------------------------------------------------------- SQL with clear errors

    def _run(self, work: Callable[[Any], T], what: str) -> T:
        """Run `work(conn)` under the lock; driver errors become TeamErrors (one reconnect on a dropped link)."""
        psycopg = require_driver()
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    raise ProjectError("the team project is closed; open it again")
                try:
                    result = work(self._conn)
                    self._away_until = 0.0  # the server answers: reads ask it again
                    return result
                except psycopg.errors.InsufficientPrivilege as error:
                    raise TeamPermissionError(
                        f"your role ({self.member}, {self.role}) may not {what} in this team project; "
                        f"ask your lead. (server: {str(error).splitlines()[0]})"
                    ) from None
                except psycopg.OperationalError as error:
                    if attempt == 1 and self._conn.broken:
                        with contextlib.suppress(TeamError):
                            self._conn = connect(self.url, announces_own_changes=True)
                            continue
                    raise TeamConnectionError(
                        f"lost the connection to the team server {describe(self.url)} while trying to {what}; "
                        "nothing you have in the window is lost. Check the network or server and try again. "
                        f"(server: {str(error).splitlines()[0] if str(error) else type(error).__name__})"
                    ) from None
        raise AssertionError("unreachable")

    def _read(self, sql: str, params: tuple[Any, ...], what: str, one: bool) -> Any:
        """A query; while the server is away a SELECT answers what it answered last (so the window keeps
        showing the list, statuses and settings) instead of failing. Mask bytes are not remembered."""
        if not sql.lstrip().upper().startswith("SELECT"):
            return self._run(
                lambda c: c.execute(sql, params).fetchone() if one else c.execute(sql, params).fetchall(),
                what,
            )
        key = (sql, repr(params), one)
        if key in self._last_reads and time.monotonic() < self._away_until:
            return self._last_reads[key]  # the server was just found away: do not wait on it again yet
        try:
            result = self._run(
                lambda c: c.execute(sql, params).fetchone() if one else c.execute(sql, params).fetchall(),
                what,
            )
        except TeamConnectionError:
            self._away_until = time.monotonic() + AWAY_SECONDS
            if key in self._last_reads:
                return self._last_reads[key]
            raise
        rows = [result] if one else result
        if not any(isinstance(v, (bytes, memoryview)) for row in rows if row for v in row):
            self._last_reads[key] = result
            if len(self._last_reads) > LAST_READS:
                self._last_reads.pop(next(iter(self._last_reads)))
        return result

    def _rows(
        self, sql: str, params: tuple[Any, ...] = (), what: str = "read the project"
    ) -> list[tuple[Any, ...]]:
        return self._read(sql, params, what, one=False)  # type: ignore[no-any-return]

    def _row(
        self, sql: str, params: tuple[Any, ...] = (), what: str = "read the project"
    ) -> tuple[Any, ...] | None:
        return self._read(sql, params, what, one=True)  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- scheme and settings

    def _load_scheme(self) -> LabelScheme:
        self.get_setting("val_fraction")  # remembered for while the server is away (see _read)
        row = self._row("SELECT value FROM segstudio.meta WHERE key = 'scheme'")
        if row is None:
            raise TeamError(
                f"the team project {describe(self.url)} has no label scheme; the lead creates it again"
            )
        try:
            return LabelScheme.from_dict(row[0])
        except SchemeError as error:
            raise TeamError(f"the team project's label scheme is invalid: {error}") from None

    def set_scheme(self, scheme: LabelScheme | str) -> None:
        if isinstance(scheme, str):
            scheme = get_scheme(scheme)
        if not isinstance(scheme, LabelScheme):
            raise SchemeError(f"expected a LabelScheme, got {type(scheme).__name__}")
        value = json.dumps(scheme.to_dict())
        self._run(
            lambda c: c.execute(
                "INSERT INTO segstudio.meta(key, value) VALUES ('scheme', %s::jsonb) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (value,),
            ),
            "change the label scheme",
        )
        self._scheme = scheme

    def _local_settings(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self._local_settings_path.read_text())
            if isinstance(data, dict):
                return data
        return {}

    def get_setting(self, key: str, default: Any = None) -> Any:
        if key.startswith(LOCAL_SETTING_PREFIX):
            return self._local_settings().get(key, default)
        # all team settings in one read (a small table), so while the server is away every one is known
        values = dict(self._rows("SELECT key, value FROM segstudio.settings"))
        return values.get(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        """Team settings are the lead's; `gui.*` settings are this member's own, kept on this machine."""
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as error:
            raise ProjectError(f"setting {key!r} must be JSON-serialisable: {error}") from None
        if key.startswith(LOCAL_SETTING_PREFIX):
            from segstudio.core.atomic import atomic_write_json

            data = self._local_settings()
            data[key] = value
            atomic_write_json(self._local_settings_path, data)
            return
        if key == "val_fraction" and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0
        ):
            raise ProjectError(f"val_fraction must be a number between 0 and 1, got {value!r}")

        def work(conn: Any) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO segstudio.settings(key, value) VALUES (%s, %s::jsonb) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, text),
                )
                if key == "val_fraction":
                    rows = conn.execute("SELECT id, content_hash FROM segstudio.images").fetchall()
                    with conn.cursor() as cur:
                        cur.executemany(
                            "UPDATE segstudio.images SET split = %s WHERE id = %s",
                            [(split_for_hash(h, float(value)), i) for i, h in rows],
                        )

        self._run(work, f"change the team setting {key!r}")

    @property
    def val_fraction(self) -> float:
        return float(self.get_setting("val_fraction", DEFAULT_VAL_FRACTION))

    @property
    def max_pixels(self) -> int | None:
        value = self.get_setting("max_pixels", image_io.DEFAULT_MAX_PIXELS)
        return None if value is None else int(value)

    def reconcile(self, handle: Any = None) -> ReconcileReport:
        """The image list is the team's (set by the lead's `team create`); nothing to reconcile here."""
        self.last_reconcile = ReconcileReport()
        return self.last_reconcile

    # ---------------------------------------------------------------- queries

    def images(self, status: Status | str | None = None, split: str | None = None) -> list[ImageRecord]:
        """One read of the whole list, filtered here: while the server is away every filter still answers."""
        rows = self._rows(
            f"SELECT {SEEN_COLUMNS} FROM segstudio.images WHERE removed_at IS NULL ORDER BY sort_key, rel_path"
        )
        # consensus annotators: their branch's status; this member's queued changes on top
        records = self._with_queued([seen_record(row) for row in rows])
        if status is not None:
            wanted = status_of(status)
            records = [r for r in records if r.status == wanted]
        if split is not None:
            records = [r for r in records if r.split == split]
        if self._only is not None:
            records = [r for r in records if r.id in self._only]
        return records

    def limit_to_accepted(self) -> int:
        """From now on `images()` lists only images whose current version a reviewer accepted (for export:
        `segstudio export ... --db URL --accepted-only`); the number of such images."""
        self._only = {i for i, r in self.verdicts().items() if r.verdict == "accepted"}
        return len(self._only)

    def image_list_stamp(self) -> tuple[int, int, int]:
        """(number of live images, highest id, sum of ids): a cheap read that changes when a lead adds,
        removes or restores images, so a window re-reads the whole list only then (`list_stamp`)."""
        row = self._row(
            "SELECT count(*), coalesce(max(id), 0), coalesce(sum(id), 0) FROM segstudio.images "
            "WHERE removed_at IS NULL"
        )
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def __len__(self) -> int:
        row = self._row("SELECT count(*) FROM segstudio.images WHERE removed_at IS NULL")
        return int(row[0]) if row else 0

    def get(self, rel_path: str) -> ImageRecord | None:
        path = db_path(rel_path.replace(os.sep, "/"))
        try:
            row = self._row(
                f"SELECT {SEEN_COLUMNS} FROM segstudio.images WHERE rel_path = %s AND removed_at IS NULL",
                (path,),
            )
        except TeamConnectionError:
            return self._last_known(lambda r: db_path(r.rel_path) == path)
        return None if row is None else self._with_queued([seen_record(row)])[0]

    def get_by_id(self, image_id: int) -> ImageRecord | None:
        try:
            row = self._row(
                f"SELECT {SEEN_COLUMNS} FROM segstudio.images WHERE id = %s AND removed_at IS NULL",
                (int(image_id),),
            )
        except TeamConnectionError:
            return self._last_known(lambda r: r.id == int(image_id))
        return None if row is None else self._with_queued([seen_record(row)])[0]

    def _last_known(self, match: Callable[[ImageRecord], bool]) -> ImageRecord:
        """While the server is away: the record as the last image list had it (TeamConnectionError if none)."""
        found = next((r for r in self.images() if match(r)), None)  # images() answers from memory now
        if found is None:
            raise TeamConnectionError(
                f"the team server {describe(self.url)} cannot be reached and this image was not seen before; "
                "check the network or server"
            )
        return found

    def _require(self, rec: ImageRecord | int) -> ImageRecord:
        image_id = rec if isinstance(rec, int) else rec.id
        current = self.get_by_id(image_id)
        if current is None:
            name = rec.rel_path if isinstance(rec, ImageRecord) else f"#{image_id}"
            raise ProjectError(f"image {name} is no longer part of the team project")
        return current

    def counts(self) -> dict[Status, int]:
        result = {status: 0 for status in Status}
        for status, count in self._rows(
            "SELECT status, count(*) FROM segstudio.images WHERE removed_at IS NULL GROUP BY status"
        ):
            result[Status(status)] = int(count)
        return result

    def _folder_path(self, rec: ImageRecord) -> Path:
        """The image's place in this machine's copy of the folder (a path leading out of it is refused)."""
        return server_named_path(self.image_dir, rec.rel_path, "the image path")

    def image_path(self, rec: ImageRecord) -> Path:
        """Where this machine has the image (no network): the folder's copy, else - when the team keeps
        its images in the server - the cache file it is (or will be) fetched into."""
        path = self._folder_path(rec)
        if self.server_images is None or path.exists():
            return path
        return self.server_images.path(rec)

    def image_file(self, rec: ImageRecord) -> Path:
        """A local file holding the image, for readers of the bytes (thumbnails, export, training): the
        folder's file when there, else the server's copy fetched into the cache (blocking: call it off
        the window's thread). `load_image` checks the folder's copy against the team's hash too."""
        path = self._folder_path(rec)
        if path.is_file() or self.server_images is None:
            return path
        return self.server_images.file(rec)

    def _checked_file(self, rec: ImageRecord) -> Path:
        """A local file holding exactly the team's image: the folder's copy once its hash was checked,
        else the server's copy fetched into the cache (checked before it is kept)."""
        path = self._folder_path(rec)
        try:
            stat = path.stat()
        except OSError:
            stat = None
        if stat is None and self.server_images is None:
            raise ProjectError(
                f"{rec.rel_path} is not in your copy of the image folder ({self.image_dir}); get the team's "
                "images (shared folder or a copy) and open the team project on that folder"
            ) from None
        if stat is not None:
            if self._hashes.get(rec.id) == (stat.st_size, stat.st_mtime_ns):
                return path
            if content_hash(path) == rec.content_hash:
                self._hashes[rec.id] = (stat.st_size, stat.st_mtime_ns)
                return path
            if self.server_images is None:
                raise ProjectError(
                    f"your copy of {rec.rel_path} differs from the team's (its content hash does not match the "
                    "server's), so masks would not line up; replace it with the team's copy of the file"
                )
        assert self.server_images is not None  # a missing or differing copy: the team's own bytes
        return self.server_images.file(rec)

    def _has_local_copy(self, rec: ImageRecord) -> bool:
        """No fetch needed (the prefetcher asks): the folder has the file, or the cache has."""
        if (self._folder_path(rec)).exists():
            return True
        return self.server_images is not None and self.server_images.is_cached(rec)

    def needs_fetch(self, rec: ImageRecord) -> bool:
        """The image is kept in the server and neither the folder nor this machine's cache has it (two
        stats, no network). A folder copy whose hash differs is fetched too, but is not seen here."""
        return self.server_images is not None and not self._has_local_copy(rec)

    def load_image(self, rec: ImageRecord) -> np.ndarray:
        """Decode this machine's copy, after checking it is the team's (same content hash)."""
        path = self._checked_file(rec)
        if self.prefetcher is not None:
            self.prefetcher.poke()  # the queue may have moved on: keep the next images coming
        return image_io.load_image(path, self.max_pixels)

    @property
    def images_in_server(self) -> bool:
        return self.server_images is not None

    def start_prefetch(self) -> QueuePrefetcher | None:
        """Fetch the member's queue ahead on a background thread (the window starts it; one-off commands
        do not); None when the team keeps no images in the server. Idempotent."""
        if self.server_images is not None and self.prefetcher is None and not self.closed:
            self.prefetcher = QueuePrefetcher(self.server_images, self._has_local_copy).start()
        return self.prefetcher

    # ---------------------------------------------------------------- per-image updates

    def set_status(self, rec: ImageRecord, status: Status | str) -> ImageRecord:
        """Change the status; while the server is away it is queued behind the image's queued save."""
        try:
            branch = self._my_branch(rec.id)
        except TeamConnectionError:
            branch = None  # away: queued as a status change; flush_pending puts it on the branch if any
        if branch is not None:  # a consensus annotator's status lives on their branch
            try:
                return self._status_on_branch(rec, status_of(status), self.base_version(rec))
            except TeamConnectionError:  # away: queued; flush_pending makes it a version of the branch
                with self._lock:
                    self.outbox.put_change(
                        rec.id, rec.rel_path, self.base_version(rec), status_of(status).value
                    )
                return replace(rec, status=status_of(status), updated_at=time.time())
        return self._change_or_queue(rec, "change the status", status=status_of(status))

    def _status_on_branch(self, rec: ImageRecord, status: Status, base: int | None) -> ImageRecord:
        """A consensus annotator's status change: a version of their branch with the same pixels."""
        png = self._png_of(base)
        return self._save_or_queue(rec, png, status, base)

    def set_split(self, rec: ImageRecord, split: str) -> ImageRecord:
        """Move the image to train/val (leads); queued like a status change while the server is away."""
        if split not in ("train", "val"):
            raise ProjectError(f"unknown split {split!r}; choose 'train' or 'val'")
        return self._change_or_queue(rec, "change an image's split", split=split)

    def _with_queued(self, records: list[ImageRecord]) -> list[ImageRecord]:
        """Records as this member's queued changes will make them (the window shows what you did)."""
        queued = {p.image_id: p for p in self.outbox.pending()}
        if not queued:
            return records
        shown = []
        for rec in records:
            entry = queued.get(rec.id)
            if entry is not None:
                status = entry.then_status or (entry.status if entry.save else None)
                if status is not None:
                    rec = replace(rec, status=Status(status))
                if entry.then_split is not None:
                    rec = replace(rec, split=entry.then_split)
            shown.append(rec)
        return shown

    def _record_unreadable(self, rec: ImageRecord, reason: str) -> None:
        return  # another member's copy may read fine: an unreadable local copy is not the team's fact

    # ---------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        counts = self.counts()
        unreadable = self._row(
            "SELECT count(*) FROM segstudio.images WHERE removed_at IS NULL AND error IS NOT NULL"
        )
        splits = dict(
            self._rows("SELECT split, count(*) FROM segstudio.images WHERE removed_at IS NULL GROUP BY split")
        )
        active = self.active_model_version()
        by_id = {r.id: r for r in self.images()}
        return {
            "image_dir": str(self.image_dir),
            "state_dir": str(self.state_dir),
            "team_server": describe(self.url),
            "member": self.member,
            "role": self.role,
            "images": sum(counts.values()),
            "removed": self.removed_count(),
            "status": {s.value: n for s, n in counts.items()},
            "unreadable": int(unreadable[0]) if unreadable else 0,
            "split": {"train": int(splits.get("train", 0)), "val": int(splits.get("val", 0))},
            "val_fraction": self.val_fraction,
            "scheme": {"name": self.scheme.name, "classes": self.scheme.names},
            "model_versions": [v.version for v in self.model_versions()],
            "active_model_version": None if active is None else active.version,
            "schema_version": self.schema_version,
            "assigned_to_me": len(self.my_queue()),
            "consensus": self.consensus_summary(),
            "rejected": [
                {"image": by_id[i].rel_path, "reviewer": r.reviewer, "comment": r.comment}
                for i, r in sorted(self.rejections().items())
                if i in by_id
            ],
        }


def _check_database(conn: Any, url: str) -> tuple[int, str, str]:
    """(schema version, member name, role) or a TeamError saying why this database cannot be joined."""
    psycopg = require_driver()
    where = describe(url)
    try:
        member = str(conn.execute("SELECT current_user").fetchone()[0])
        flags = conn.execute(
            "SELECT pg_has_role(current_user, r, 'MEMBER') FROM unnest(%s::text[]) AS r",
            ([schema.LEAD, schema.REVIEWER, schema.ANNOTATOR],),
        ).fetchall()
    except psycopg.errors.UndefinedObject:
        flags = []
    except psycopg.Error as error:
        raise TeamError(f"cannot use the team server {where}: {error}") from None
    if len(flags) < 3 or not any(f[0] for f in flags):
        raise TeamError(
            f"{where}: this server has no SegStudio roles for you (your role is not a member of "
            "segstudio_annotator, segstudio_reviewer or segstudio_lead). Ask the lead to run "
            "`segstudio team init-server` and grant you a role (docs/team.md)."
        )
    role = next(name for name, f in zip(("lead", "reviewer", "annotator"), flags) if f[0])
    try:
        version = schema.read_version(conn)
    except psycopg.Error as error:
        raise TeamError(f"cannot read the team project at {where}: {str(error).splitlines()[0]}") from None
    schema.check_version(version, where)
    assert version is not None
    if version < schema.SCHEMA_VERSION:
        if role != "lead":
            raise TeamError(
                f"the team project {where} uses an older schema ({version}); a lead opens it once with this "
                "SegStudio version to upgrade it, then you can join."
            )
        version = schema.migrate(conn)
    return version, member, role
