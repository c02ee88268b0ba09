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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from segstudio.core import images as image_io
from segstudio.core.effort import EffortRow
from segstudio.core.errors import ProjectError, SchemeError
from segstudio.core.hashing import content_hash
from segstudio.core.project import Project, _checked_image_dir
from segstudio.core.schemes import LabelScheme, get_scheme
from segstudio.core.store_masks import check_shape
from segstudio.core.store_records import (
    IMAGE_COLUMNS,
    ImageRecord,
    ModelVersion,
    Prediction,
    ReconcileReport,
    Status,
    db_path,
    image_record,
    split_for_hash,
    status_of,
)
from segstudio.core.store_settings import DEFAULT_VAL_FRACTION
from segstudio.team import schema
from segstudio.team.blobs import decode_png, encode_png
from segstudio.team.connection import connect, describe, require_driver
from segstudio.team.errors import LeaseError, StaleSaveError, TeamError, TeamPermissionError

__all__ = ["LEASE_SECONDS", "MaskVersion", "Review", "TeamProject", "cache_dir_for"]

#: A lease lives this long without a heartbeat (a crashed or disconnected client frees it after this).
LEASE_SECONDS = 180.0
#: Settings with this prefix are the member's own (window layout, last image): kept on this machine.
LOCAL_SETTING_PREFIX = "gui."

T = TypeVar("T")


@dataclass(frozen=True)
class MaskVersion:
    id: int
    image_id: int
    parent: int | None
    author: str
    created_at: float
    status: str
    removed: bool  # a "reset to prediction" (the version holds no mask)


@dataclass(frozen=True)
class Review:
    verdict: str  # "accepted" or "rejected"
    comment: str
    reviewer: str
    mask_version: int
    created_at: float


def cache_dir_for(url: str) -> Path:
    """This machine's cache folder for one team database (never inside the shared image folder)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "segstudio" / "team"
    key = hashlib.blake2b(describe(url).split("@", 1)[-1].encode(), digest_size=8).hexdigest()
    return base / key


def _prefixed(columns: str, prefix: str) -> str:
    return ", ".join(f"{prefix}.{c.strip()}" for c in columns.split(","))


class TeamProject(Project):
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

    # ---------------------------------------------------------------- opening and closing

    @classmethod
    def join(
        cls,
        image_dir: str | os.PathLike[str],
        url: str,
        state_dir: str | os.PathLike[str] | None = None,
        heartbeat: bool = True,
    ) -> TeamProject:
        """Open the team project at `url` on the local copy `image_dir` of its images."""
        folder = _checked_image_dir(image_dir)
        conn = connect(url)
        psycopg = require_driver()
        try:
            version, member, role = _check_database(conn, url)
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
        try:
            project.layout.create()
            project._scheme = project._load_scheme()
        except psycopg.Error as error:
            project.close()
            raise TeamError(f"cannot read the team project {describe(url)}: {error}") from None
        except BaseException:
            project.close()
            raise
        if heartbeat:
            project._heartbeat = threading.Thread(
                target=project._beat, name="team-lease-heartbeat", daemon=True
            )
            project._heartbeat.start()
        return project

    def close(self) -> None:
        """Give back this client's leases and close the connection (idempotent)."""
        self._stop.set()
        with self._lock:
            if self._conn is None:
                return
            if self._held:
                with contextlib.suppress(Exception):
                    self._conn.execute(
                        "DELETE FROM segstudio.leases WHERE holder = current_user AND image_id = ANY(%s)",
                        (sorted(self._held),),
                    )
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
                    return work(self._conn)
                except psycopg.errors.InsufficientPrivilege as error:
                    raise TeamPermissionError(
                        f"your role ({self.member}, {self.role}) may not {what} in this team project; "
                        f"ask your lead. (server: {str(error).splitlines()[0]})"
                    ) from None
                except psycopg.OperationalError as error:
                    if attempt == 1 and self._conn.broken:
                        with contextlib.suppress(TeamError):
                            self._conn = connect(self.url)
                            continue
                    raise TeamError(
                        f"lost the connection to the team server {describe(self.url)} while trying to {what}; "
                        "nothing you have in the window is lost. Check the network or server and try again. "
                        f"(server: {str(error).splitlines()[0] if str(error) else type(error).__name__})"
                    ) from None
        raise AssertionError("unreachable")

    def _rows(
        self, sql: str, params: tuple[Any, ...] = (), what: str = "read the project"
    ) -> list[tuple[Any, ...]]:
        return self._run(lambda c: c.execute(sql, params).fetchall(), what)

    def _row(
        self, sql: str, params: tuple[Any, ...] = (), what: str = "read the project"
    ) -> tuple[Any, ...] | None:
        return self._run(lambda c: c.execute(sql, params).fetchone(), what)

    # ---------------------------------------------------------------- scheme and settings

    def _load_scheme(self) -> LabelScheme:
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
        row = self._row("SELECT value FROM segstudio.settings WHERE key = %s", (key,))
        return default if row is None else row[0]

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
        sql = f"SELECT {IMAGE_COLUMNS} FROM segstudio.images WHERE removed_at IS NULL"
        params: list[Any] = []
        if status is not None:
            sql += " AND status = %s"
            params.append(status_of(status).value)
        if split is not None:
            sql += " AND split = %s"
            params.append(split)
        sql += " ORDER BY sort_key, rel_path"
        return [image_record(row) for row in self._rows(sql, tuple(params))]

    def __len__(self) -> int:
        row = self._row("SELECT count(*) FROM segstudio.images WHERE removed_at IS NULL")
        return int(row[0]) if row else 0

    def get(self, rel_path: str) -> ImageRecord | None:
        row = self._row(
            f"SELECT {IMAGE_COLUMNS} FROM segstudio.images WHERE rel_path = %s AND removed_at IS NULL",
            (db_path(rel_path.replace(os.sep, "/")),),
        )
        return None if row is None else image_record(row)

    def get_by_id(self, image_id: int) -> ImageRecord | None:
        row = self._row(
            f"SELECT {IMAGE_COLUMNS} FROM segstudio.images WHERE id = %s AND removed_at IS NULL",
            (int(image_id),),
        )
        return None if row is None else image_record(row)

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

    def load_image(self, rec: ImageRecord) -> np.ndarray:
        """Decode this machine's copy, after checking it is the team's (same content hash)."""
        path = self.image_path(rec)
        try:
            stat = path.stat()
        except OSError:
            raise ProjectError(
                f"{rec.rel_path} is not in your copy of the image folder ({self.image_dir}); get the team's "
                "images (shared folder or a copy) and open the team project on that folder"
            ) from None
        if self._hashes.get(rec.id) != (stat.st_size, stat.st_mtime_ns):
            if content_hash(path) != rec.content_hash:
                raise ProjectError(
                    f"your copy of {rec.rel_path} differs from the team's (its content hash does not match the "
                    "server's), so masks would not line up; replace it with the team's copy of the file"
                )
            self._hashes[rec.id] = (stat.st_size, stat.st_mtime_ns)
        return image_io.load_image(path, self.max_pixels)

    # ---------------------------------------------------------------- per-image updates

    def _update(self, rec: ImageRecord, what: str, **values: Any) -> ImageRecord:
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = %s" for name in values)
        row = self._row(
            f"UPDATE segstudio.images SET {assignments} WHERE id = %s AND removed_at IS NULL RETURNING {IMAGE_COLUMNS}",
            (*values.values(), rec.id),
            what,
        )
        if row is None:
            self._refuse_if_leased(rec)
            raise ProjectError(f"image {rec.rel_path} is no longer part of the team project")
        return image_record(row)

    def set_status(self, rec: ImageRecord, status: Status | str) -> ImageRecord:
        return self._update(rec, "change the status", status=status_of(status).value)

    def set_split(self, rec: ImageRecord, split: str) -> ImageRecord:
        if split not in ("train", "val"):
            raise ProjectError(f"unknown split {split!r}; choose 'train' or 'val'")
        return self._update(rec, "change an image's split", split=split)

    def _record_unreadable(self, rec: ImageRecord, reason: str) -> None:
        return  # another member's copy may read fine: an unreadable local copy is not the team's fact

    # ---------------------------------------------------------------- leases

    def lease_holder(self, rec: ImageRecord | int) -> str | None:
        """Who is editing the image now (a live lease), or None."""
        image_id = rec if isinstance(rec, int) else rec.id
        row = self._row(
            "SELECT holder FROM segstudio.leases WHERE image_id = %s AND expires_at > now()", (image_id,)
        )
        return None if row is None else str(row[0])

    def editors(self) -> dict[int, str]:
        """image id -> member editing it now (live leases, this member's own included)."""
        rows = self._rows("SELECT image_id, holder FROM segstudio.leases WHERE expires_at > now()")
        return {int(i): str(h) for i, h in rows}

    def _refuse_if_leased(self, rec: ImageRecord) -> None:
        holder = self.lease_holder(rec)
        if holder is not None and holder != self.member:
            raise LeaseError(
                f"{rec.rel_path} is being edited by {holder}; you can look at it, and edit it once they "
                "close it (or their lease expires)"
            )

    def take_lease(self, rec: ImageRecord, seconds: float = LEASE_SECONDS) -> None:
        """Start editing: take (or renew) the image's lease; LeaseError when another member holds it."""
        psycopg = require_driver()

        def work(conn: Any) -> Any:
            return conn.execute(
                "INSERT INTO segstudio.leases(image_id, holder, expires_at) "
                "VALUES (%s, current_user, now() + make_interval(secs => %s)) "
                "ON CONFLICT (image_id) DO UPDATE SET holder = excluded.holder, taken_at = clock_timestamp(), "
                "expires_at = excluded.expires_at "
                "WHERE segstudio.leases.holder = current_user OR segstudio.leases.expires_at < now() "
                "RETURNING holder",
                (rec.id, float(seconds)),
            ).fetchone()

        try:
            row = self._run(work, "take the image's lease")
        except TeamPermissionError:
            row = None
        except psycopg.Error as error:  # pragma: no cover - defensive: a foreign key on a removed image
            raise TeamError(f"cannot take the lease of {rec.rel_path}: {error}") from None
        if row is None:
            self._refuse_if_leased(rec)
            raise LeaseError(f"cannot take the lease of {rec.rel_path}; try again")
        self._held.add(rec.id)
        if rec.id not in self._base:
            self._base[rec.id] = self._head(rec.id)

    def release_lease(self, rec: ImageRecord) -> None:
        """Stop editing: others may edit the image at once."""
        self._held.discard(rec.id)
        self._run(
            lambda c: c.execute(
                "DELETE FROM segstudio.leases WHERE image_id = %s AND holder = current_user", (rec.id,)
            ),
            "give back the image's lease",
        )

    def heartbeat(self, seconds: float = LEASE_SECONDS) -> int:
        """Renew every lease this client holds; the number renewed (a lost one is dropped from the set)."""
        if not self._held:
            return 0
        rows = self._rows(
            "UPDATE segstudio.leases SET expires_at = now() + make_interval(secs => %s) "
            "WHERE holder = current_user AND image_id = ANY(%s) RETURNING image_id",
            (float(seconds), sorted(self._held)),
            "renew leases",
        )
        self._held &= {int(r[0]) for r in rows}
        return len(rows)

    def _beat(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            with contextlib.suppress(Exception):  # a dropped link is retried on the next beat
                self.heartbeat()

    # ---------------------------------------------------------------- masks (versioned)

    def _head(self, image_id: int) -> int | None:
        row = self._row("SELECT mask_head FROM segstudio.images WHERE id = %s", (image_id,))
        return None if row is None or row[0] is None else int(row[0])

    def has_mask(self, rec: ImageRecord | int) -> bool:
        image_id = rec if isinstance(rec, int) else rec.id
        row = self._row(
            "SELECT v.png IS NOT NULL FROM segstudio.images i JOIN segstudio.mask_versions v ON v.id = i.mask_head "
            "WHERE i.id = %s",
            (image_id,),
        )
        return bool(row and row[0])

    def load_mask(self, rec: ImageRecord) -> np.ndarray | None:
        """The current mask (None when there is none); remembers its version as the base of the next save."""
        row = self._row(
            "SELECT i.mask_head, v.png FROM segstudio.images i "
            "LEFT JOIN segstudio.mask_versions v ON v.id = i.mask_head WHERE i.id = %s",
            (rec.id,),
        )
        if row is None:
            raise ProjectError(f"image {rec.rel_path} is no longer part of the team project")
        self._base[rec.id] = None if row[0] is None else int(row[0])
        return None if row[1] is None else decode_png(row[1], rec.shape, f"the mask of {rec.rel_path}")

    def base_version(self, rec: ImageRecord) -> int | None:
        """The mask version the next save of `rec` starts from (what `load_mask` last returned)."""
        if rec.id not in self._base:
            self._base[rec.id] = self._head(rec.id)
        return self._base[rec.id]

    def _insert_version(self, rec: ImageRecord, png: bytes | None, status: Status, base: int | None) -> int:
        psycopg = require_driver()

        def work(conn: Any) -> int:
            row = conn.execute(
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, %s, %s, %s) "
                "RETURNING id",
                (rec.id, base, png, status.value),
            ).fetchone()
            return int(row[0])

        try:
            new = self._run(work, "save this image's mask")
        except TeamPermissionError:
            # the only row-level rule a member's own save can meet: someone held the lease at that moment
            self._refuse_if_leased(rec)
            raise LeaseError(
                f"{rec.rel_path} was being edited by another member when you saved, so nothing was written; "
                "your pixels are still in the window, save again"
            ) from None
        except psycopg.Error as error:
            if getattr(error, "sqlstate", None) == schema.STALE_SQLSTATE:
                raise self._stale(rec, png, error) from None
            raise TeamError(f"the team server refused the save of {rec.rel_path}: {error}") from None
        self._base[rec.id] = new
        return new

    def _stale(self, rec: ImageRecord, png: bytes | None, error: Any) -> StaleSaveError:
        detail: dict[str, Any] = {}
        with contextlib.suppress(ValueError, TypeError):
            detail = json.loads(getattr(error.diag, "message_detail", None) or "{}")
        who, when = detail.get("author") or "another member", detail.get("at") or "just now"
        return StaleSaveError(
            f"{rec.rel_path} was saved by {who} at {when} after you opened it, so your save was refused and "
            "nothing was overwritten. Your pixels are still in the window: reload the image to see their "
            "version, then redo or merge your change."
        )

    def save_mask(
        self,
        rec: ImageRecord,
        mask: np.ndarray,
        status: Status | str = Status.IN_PROGRESS,
        base_version: int | object | None = ...,
    ) -> ImageRecord:
        """Store a new mask version on top of `base_version` (default: the one `load_mask` returned)."""
        status = status_of(status)
        check_shape(rec, mask, "the mask")  # an image's size never changes in a team project
        base = self.base_version(rec) if base_version is ... else base_version
        self._insert_version(rec, encode_png(mask), status, base)  # type: ignore[arg-type]
        return self._require(rec.id)

    def delete_mask(self, rec: ImageRecord, status: Status | str | None = None) -> ImageRecord:
        """'Reset to prediction' as a new version without a mask: the earlier versions stay."""
        current = self._require(rec)
        if status is None:
            status = Status.PREDICTED if self.has_prediction(current) else Status.NEW
        self._insert_version(current, None, status_of(status), self.base_version(current))
        return self._require(current.id)

    def mask_history(self, rec: ImageRecord) -> list[MaskVersion]:
        """Every saved version of the image's mask, oldest first."""
        rows = self._rows(
            "SELECT id, image_id, parent, author, extract(epoch FROM created_at), status, png IS NULL "
            "FROM segstudio.mask_versions WHERE image_id = %s ORDER BY id",
            (rec.id,),
        )
        return [MaskVersion(int(a), int(b), c, d, float(e), f, bool(g)) for a, b, c, d, e, f, g in rows]

    def load_mask_version(self, rec: ImageRecord, version: int) -> np.ndarray | None:
        row = self._row(
            "SELECT png FROM segstudio.mask_versions WHERE id = %s AND image_id = %s", (version, rec.id)
        )
        if row is None:
            raise ProjectError(f"{rec.rel_path} has no mask version {version}")
        return None if row[0] is None else decode_png(row[0], rec.shape, f"mask version {version}")

    def restore_mask_version(self, rec: ImageRecord, version: int) -> ImageRecord:
        """Roll back: a new version with the content of `version` (nothing is deleted)."""
        mask = self.load_mask_version(rec, version)
        self.base_version(rec)
        if mask is None:
            return self.delete_mask(rec)
        return self.save_mask(rec, mask, self._require(rec).status)

    # ---------------------------------------------------------------- review

    def review(self, rec: ImageRecord, accepted: bool, comment: str = "") -> Review:
        """Accept or reject the image's current mask version (reviewers; never one's own work)."""
        head = self._head(rec.id)
        if head is None:
            raise ProjectError(f"{rec.rel_path} has no saved mask to review")
        verdict = "accepted" if accepted else "rejected"
        self._run(
            lambda c: c.execute(
                "INSERT INTO segstudio.reviews(image_id, mask_version, verdict, comment) VALUES (%s, %s, %s, %s)",
                (rec.id, head, verdict, comment),
            ),
            f"review (mark {verdict}) this image - reviewers review others' work",
        )
        review = self.review_of(rec)
        assert review is not None
        return review

    def review_of(self, rec: ImageRecord) -> Review | None:
        """The latest verdict on the image's current version (a new save clears it), or None."""
        row = self._row(
            "SELECT r.verdict, r.comment, r.reviewer, r.mask_version, extract(epoch FROM r.created_at) "
            "FROM segstudio.reviews r JOIN segstudio.images i ON i.id = r.image_id AND r.mask_version = i.mask_head "
            "WHERE r.image_id = %s ORDER BY r.id DESC LIMIT 1",
            (rec.id,),
        )
        return None if row is None else Review(row[0], row[1], row[2], int(row[3]), float(row[4]))

    # ---------------------------------------------------------------- predictions

    def has_prediction(self, rec: ImageRecord | int) -> bool:
        image_id = rec if isinstance(rec, int) else rec.id
        return self._row("SELECT 1 FROM segstudio.predictions WHERE image_id = %s", (image_id,)) is not None

    def load_prediction(self, rec: ImageRecord) -> Prediction | None:
        row = self._row(
            "SELECT labels, confidence, raw_labels FROM segstudio.predictions WHERE image_id = %s", (rec.id,)
        )
        if row is None:
            return None
        labels = decode_png(row[0], rec.shape, f"the prediction of {rec.rel_path}")
        confidence = None if row[1] is None else decode_png(row[1], labels.shape, "the confidence map")
        raw = None if row[2] is None else decode_png(row[2], labels.shape, "the raw prediction")
        return Prediction(labels, confidence, raw)

    def prediction_blobs(self, rec: ImageRecord, labels: np.ndarray, confidence: np.ndarray,
                         raw_labels: np.ndarray | None) -> tuple[bytes, bytes, bytes | None, float | None]:  # fmt: skip
        check_shape(rec, labels, "the predicted labels")
        check_shape(rec, confidence, "the confidence map")
        if raw_labels is not None:
            check_shape(rec, raw_labels, "the raw predicted labels")
        conf = np.asarray(confidence)
        mean = float(conf.mean()) / 255.0 if conf.size else None
        raw = None if raw_labels is None else encode_png(raw_labels, "raw labels")
        return encode_png(labels, "labels"), encode_png(conf, "a confidence map"), raw, mean

    def store_prediction(
        self, conn: Any, rec: ImageRecord, blobs: tuple[Any, ...], model_version: str
    ) -> None:
        """Write one prediction inside the caller's transaction (used by the work queue too)."""
        labels, conf, raw, mean = blobs
        conn.execute(
            "INSERT INTO segstudio.predictions(image_id, labels, confidence, raw_labels, model_version) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (image_id) DO UPDATE SET labels = excluded.labels, "
            "confidence = excluded.confidence, raw_labels = excluded.raw_labels, "
            "model_version = excluded.model_version, author = current_user, created_at = clock_timestamp(), "
            "times = segstudio.predictions.times + 1",
            (rec.id, labels, conf, raw, model_version),
        )
        conn.execute(
            "UPDATE segstudio.images SET status = CASE WHEN status = 'new' THEN 'predicted' ELSE status END, "
            "model_version = %s, mean_confidence = %s, updated_at = %s WHERE id = %s",
            (model_version, mean, time.time(), rec.id),
        )

    def save_prediction(
        self,
        rec: ImageRecord,
        labels: np.ndarray,
        confidence: np.ndarray,
        model_version: str,
        raw_labels: np.ndarray | None = None,
    ) -> ImageRecord:
        current = self._require(rec)
        blobs = self.prediction_blobs(current, labels, confidence, raw_labels)

        def work(conn: Any) -> None:
            with conn.transaction():
                self.store_prediction(conn, current, blobs, model_version)

        self._run(work, "store a prediction")
        return self._require(current.id)

    # ---------------------------------------------------------------- effort (per member)

    def add_effort(
        self, rec: ImageRecord, seconds: float, actions: dict[str, int], changed_fraction: float | None = None
    ) -> None:
        def work(conn: Any) -> None:
            with conn.transaction():
                row = conn.execute(
                    "SELECT active_seconds, actions FROM segstudio.effort WHERE image_id = %s "
                    "AND member = current_user FOR UPDATE",
                    (rec.id,),
                ).fetchone()
                total = dict(row[1]) if row else {}
                for tool, count in actions.items():
                    total[tool] = int(total.get(tool, 0)) + int(count)
                conn.execute(
                    "INSERT INTO segstudio.effort(image_id, active_seconds, actions, changed_fraction, updated_at) "
                    "VALUES (%s, %s, %s::jsonb, %s, %s) ON CONFLICT (image_id, member) DO UPDATE SET "
                    "active_seconds = excluded.active_seconds, actions = excluded.actions, "
                    "changed_fraction = COALESCE(excluded.changed_fraction, segstudio.effort.changed_fraction), "
                    "updated_at = excluded.updated_at",
                    (rec.id, (row[0] if row else 0.0) + float(seconds), json.dumps(total), changed_fraction,
                     time.time()),
                )  # fmt: skip

        self._run(work, "record editing effort")

    def effort_rows(self) -> list[EffortRow]:
        """One row per image (all members summed), as a local project reports it."""
        return [row for _, row in self._effort_by_member(merge=True)]

    def effort_by_member(self) -> list[tuple[str, EffortRow]]:
        return self._effort_by_member(merge=False)

    def _effort_by_member(self, merge: bool) -> list[tuple[str, EffortRow]]:
        rows = self._rows(
            "SELECT e.member, i.rel_path, i.status, i.model_version, e.active_seconds, e.actions, "
            "e.changed_fraction, i.id FROM segstudio.effort e JOIN segstudio.images i ON i.id = e.image_id "
            "WHERE i.removed_at IS NULL ORDER BY i.sort_key, i.rel_path, e.updated_at"
        )
        out: list[tuple[str, EffortRow]] = []
        for member, rel, status, version, seconds, actions, changed, _image_id in rows:
            row = EffortRow(_path(rel), status, version, float(seconds), dict(actions), changed)
            if merge and out and out[-1][1].rel_path == row.rel_path:
                prev = out[-1][1]
                merged = dict(prev.actions)
                for tool, count in row.actions.items():
                    merged[tool] = int(merged.get(tool, 0)) + int(count)
                change = row.changed_fraction if row.changed_fraction is not None else prev.changed_fraction
                out[-1] = (
                    "",
                    EffortRow(prev.rel_path, status, version, prev.seconds + row.seconds, merged, change),
                )
            else:
                out.append((member, row))
        return out

    # ---------------------------------------------------------------- model versions (lead adds)

    def add_model_version(
        self,
        version: str,
        checkpoint_path: str | os.PathLike[str],
        arch: str,
        metrics: dict[str, Any] | None = None,
        parent: str | None = None,
    ) -> ModelVersion:
        """Upload the checkpoint into the server so every member's machine can fetch it."""
        if not version or not isinstance(version, str):
            raise ProjectError("a model version needs a name such as 'v3'")
        path = Path(checkpoint_path).absolute()
        try:
            name = path.relative_to(self.state_dir).as_posix()
        except ValueError:
            name = f"models/{version}/{path.name}"
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ProjectError(f"cannot read the checkpoint {path} ({error.strerror or error})") from None
        created = time.time()
        self._run(
            lambda c: c.execute(
                "INSERT INTO segstudio.model_versions(version, checkpoint_name, checkpoint, arch, metrics, parent, "
                "created_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)",
                (version, name, data, arch, json.dumps(metrics or {}), parent, created),
            ),
            "add a model version",
        )
        return ModelVersion(version, self.state_dir / name, arch, dict(metrics or {}), parent, created)

    def _version(self, row: tuple[Any, ...]) -> ModelVersion:
        version, name, arch, metrics, parent, created = row
        return ModelVersion(version, self.state_dir / name, arch, dict(metrics), parent, float(created))

    def model_versions(self) -> list[ModelVersion]:
        rows = self._rows(
            "SELECT version, checkpoint_name, arch, metrics, parent, created_at FROM segstudio.model_versions "
            "ORDER BY created_at, version"
        )
        return [self._version(r) for r in rows]

    def get_model_version(self, version: str) -> ModelVersion | None:
        """The version with its checkpoint fetched into this machine's cache (once)."""
        row = self._row(
            "SELECT version, checkpoint_name, arch, metrics, parent, created_at FROM segstudio.model_versions "
            "WHERE version = %s",
            (version,),
        )
        if row is None:
            return None
        record = self._version(row)
        if not record.checkpoint_path.is_file():
            blob = self._row("SELECT checkpoint FROM segstudio.model_versions WHERE version = %s", (version,))
            if blob is not None and blob[0] is not None:
                from segstudio.core.atomic import atomic_write_bytes

                record.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(record.checkpoint_path, bytes(blob[0]))
        return record

    def checkpoint_bytes(self) -> Iterator[tuple[str, bytes | None]]:
        for name, data in self._rows("SELECT checkpoint_name, checkpoint FROM segstudio.model_versions"):
            yield name, None if data is None else bytes(data)

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
        return {
            "image_dir": str(self.image_dir),
            "state_dir": str(self.state_dir),
            "team_server": describe(self.url),
            "member": self.member,
            "role": self.role,
            "images": sum(counts.values()),
            "status": {s.value: n for s, n in counts.items()},
            "unreadable": int(unreadable[0]) if unreadable else 0,
            "split": {"train": int(splits.get("train", 0)), "val": int(splits.get("val", 0))},
            "val_fraction": self.val_fraction,
            "scheme": {"name": self.scheme.name, "classes": self.scheme.names},
            "model_versions": [v.version for v in self.model_versions()],
            "active_model_version": None if active is None else active.version,
            "schema_version": self.schema_version,
        }


def _path(stored: str) -> str:
    from segstudio.core.store_records import path_from_db

    return path_from_db(stored)


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
