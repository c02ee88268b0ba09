"""Editing rules of a team project, as TeamProject methods: leases, versioned masks, review.

Split from `team.project` (the facade) so each file has one job; the server enforces every rule
here (see `team.schema`), these methods turn its answers into clear errors.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from segstudio.core.errors import ProjectError
from segstudio.core.store_masks import check_shape
from segstudio.core.store_records import ImageRecord, Status, status_of
from segstudio.team import schema
from segstudio.team.blobs import decode_png, encode_png
from segstudio.team.connection import require_driver
from segstudio.team.consensus import MY_BRANCH, SEEN_COLUMNS, WORK_HEAD, seen_record
from segstudio.team.errors import (
    LeaseError,
    StaleSaveError,
    TeamConnectionError,
    TeamError,
    TeamPermissionError,
)
from segstudio.team.live import CHANNEL
from segstudio.team.outbox import Outbox, PendingSave, SaveConflict

__all__ = ["LEASE_SECONDS", "EditingRules", "MaskVersion", "Review", "announce"]

#: A lease lives this long without a heartbeat (a crashed or disconnected client frees it after this).
LEASE_SECONDS = 180.0
#: How often saves queued while the server was away are retried (seconds).
RETRY_SECONDS = 3.0
#: An image with its consensus row, if any (what `consensus.WORK_HEAD` reads).
_IMAGE_AND_CONSENSUS = "segstudio.images i LEFT JOIN segstudio.consensus c ON c.image_id = i.id"


def commit_then_read(
    conn: Any, write: str, write_params: tuple[Any, ...], read: str, read_params: tuple[Any, ...]
) -> tuple[Any, Any]:
    """`write; COMMIT; read` in ONE round trip: (the write's first row or None, the read's first row).

    One simple-protocol query string (parameters bound by the client): PostgreSQL commits the write at
    the COMMIT - durably, its own transaction - and runs `read` in a new one. If the write fails (a stale
    save, a policy), the rest is not run and the error is raised as usual. Used to NOTIFY right after a
    commit (schema 6) without a second round trip: under load each round trip is two waits for a CPU."""
    psycopg = require_driver()
    with psycopg.ClientCursor(conn) as cur:
        cur.execute(f"{write}; COMMIT; {read}", (*write_params, *read_params))
        first = cur.fetchone() if cur.pgresult is not None and cur.description is not None else None
        cur.nextset()  # COMMIT
        cur.nextset()
        second = cur.fetchone() if cur.description is not None else None
    return first, second


def announce(conn: Any, table: str, image_ids: list[int]) -> None:
    """Tell the live view (team.live) about this client's committed changes to `table`. Sent after the
    change committed, from a statement that writes nothing: a NOTIFY inside the saving transaction would
    hold PostgreSQL's database-wide notify lock across the save's fsync (schema 6)."""
    if image_ids:
        conn.execute(
            "SELECT pg_notify(%s, %s || ':' || i) FROM unnest(%s::bigint[]) AS i",
            (CHANNEL, table, [int(i) for i in image_ids]),
        )


@dataclass(frozen=True)
class MaskVersion:
    id: int
    image_id: int
    parent: int | None
    author: str
    created_at: float
    status: str
    removed: bool  # a "reset to prediction" (the version holds no mask)
    branch: str | None = None  # "A"/"B": a consensus annotator's own line (team.consensus); None: main


@dataclass(frozen=True)
class Review:
    verdict: str  # "accepted" or "rejected"
    comment: str
    reviewer: str
    mask_version: int
    created_at: float


class EditingRules:
    """Mixed into TeamProject, which provides `_run`, `_row`, `_rows`, `_require`, `member` and the
    client-side state (`_base`: version each save starts from; `_held`: leases held; `_stop`)."""

    _base: dict[int, int | None]
    _held: set[int]
    _stop: threading.Event
    _lock: Any
    outbox: Outbox
    conflicts: list[SaveConflict]
    member: str
    _run: Any
    _row: Any
    _rows: Any
    _require: Any
    _my_branch: Any  # team.consensus
    _branch_refusal: Any
    _closed_branch: Any
    _kept_mine: Any

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
        """Start editing: take (or renew) the image's lease; LeaseError when another member holds it.

        An annotator of an open consensus image edits their own branch, which nobody else may write:
        it needs no lease (the stale-save rule still refuses a second window of theirs)."""
        psycopg = require_driver()
        if self._my_branch(rec.id) is not None:
            if rec.id not in self._base:
                self._base[rec.id] = self._work_head(rec.id)
            return

        def work(conn: Any) -> Any:
            # taken (or renewed), committed, announced and the mask head read: one round trip; a retry
            # after a dropped link takes it again (idempotent)
            row, head = commit_then_read(
                conn,
                "INSERT INTO segstudio.leases(image_id, holder, expires_at) "
                "VALUES (%s, current_user, now() + make_interval(secs => %s)) "
                "ON CONFLICT (image_id) DO UPDATE SET holder = excluded.holder, taken_at = clock_timestamp(), "
                "expires_at = excluded.expires_at "
                "WHERE segstudio.leases.holder = current_user OR segstudio.leases.expires_at < now() "
                "RETURNING holder",
                (rec.id, float(seconds)),
                "SELECT i.mask_head, pg_notify(%s, %s) FROM segstudio.images i JOIN segstudio.leases l "
                "ON l.image_id = i.id AND l.holder = current_user WHERE i.id = %s",
                (CHANNEL, f"leases:{int(rec.id)}", rec.id),
            )
            return None if row is None else (row[0], head)

        try:
            row = self._run(work, "take the image's lease")
        except TeamPermissionError:
            row = None
        except psycopg.Error as error:
            if getattr(error, "sqlstate", None) == "P0002":
                raise ProjectError(
                    f"{rec.rel_path} was removed from the team project by a lead; press F5 to refresh the "
                    "list (a lead can bring it back with `segstudio team restore`)"
                ) from None
            raise TeamError(f"cannot take the lease of {rec.rel_path}: {error}") from None
        if row is None:
            self._refuse_if_leased(rec)
            raise LeaseError(f"cannot take the lease of {rec.rel_path}; try again")
        self._held.add(rec.id)
        if rec.id not in self._base:
            head = row[1]  # read with the lease (no branch here: branch annotators took no lease)
            self._base[rec.id] = None if head is None or head[0] is None else int(head[0])

    def release_lease(self, rec: ImageRecord) -> None:
        """Stop editing: others may edit the image at once."""
        self._held.discard(rec.id)

        def work(conn: Any) -> None:
            commit_then_read(
                conn,
                "DELETE FROM segstudio.leases WHERE image_id = %s AND holder = current_user",
                (rec.id,),
                "SELECT pg_notify(%s, %s)",
                (CHANNEL, f"leases:{int(rec.id)}"),
            )

        self._run(work, "give back the image's lease")

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
        last = time.monotonic()
        while not self._stop.wait(RETRY_SECONDS):
            with contextlib.suppress(Exception):  # a dropped link is retried on the next beat
                if self.outbox.pending():
                    self.flush_pending()
                if time.monotonic() - last >= LEASE_SECONDS / 3:
                    last = time.monotonic()
                    self.heartbeat()

    # ---------------------------------------------------------------- masks (versioned)

    def _head(self, image_id: int) -> int | None:
        row = self._row("SELECT mask_head FROM segstudio.images WHERE id = %s", (image_id,))
        return None if row is None or row[0] is None else int(row[0])

    def _work_head(self, image_id: int) -> int | None:
        """The version this member's next save builds on: their branch's head on an open consensus image
        they annotate, else the main head."""
        row = self._row(f"SELECT {WORK_HEAD} FROM {_IMAGE_AND_CONSENSUS} WHERE i.id = %s", (image_id,))
        return None if row is None or row[0] is None else int(row[0])

    def has_mask(self, rec: ImageRecord | int) -> bool:
        image_id = rec if isinstance(rec, int) else rec.id
        row = self._row(
            f"SELECT v.png IS NOT NULL FROM {_IMAGE_AND_CONSENSUS} JOIN segstudio.mask_versions v "
            f"ON v.id = {WORK_HEAD} WHERE i.id = %s",
            (image_id,),
        )
        return bool(row and row[0])

    def load_mask(self, rec: ImageRecord) -> np.ndarray | None:
        """The current mask (None when there is none); remembers its version as the base of the next save.
        An annotator of an open consensus image gets their own branch's mask."""
        row = self._row(
            f"SELECT {WORK_HEAD}, v.png FROM {_IMAGE_AND_CONSENSUS} "
            f"LEFT JOIN segstudio.mask_versions v ON v.id = {WORK_HEAD} WHERE i.id = %s",
            (rec.id,),
        )
        if row is None:
            raise ProjectError(f"image {rec.rel_path} is no longer part of the team project")
        queued = self.outbox.get(rec.id)
        if queued is not None and queued.save:  # this member's own newer pixels, not yet on the server
            return (
                None
                if queued.png is None
                else decode_png(queued.png, rec.shape, f"the queued mask of {rec.rel_path}")
            )
        self._base[rec.id] = None if row[0] is None else int(row[0])
        return None if row[1] is None else decode_png(row[1], rec.shape, f"the mask of {rec.rel_path}")

    def base_version(self, rec: ImageRecord) -> int | None:
        """The mask version the next save of `rec` starts from (what `load_mask` last returned)."""
        if rec.id not in self._base:
            self._base[rec.id] = self._work_head(rec.id)
        return self._base[rec.id]

    def _insert_version(
        self, rec: ImageRecord, png: bytes | None, status: Status, base: int | None
    ) -> tuple[int, ImageRecord | None]:
        """Store a version: (its id, the image's new row). One round trip: the INSERT (the trigger checks
        `base` and locks the image row), its commit, then the NOTIFY and the row read (schema 6)."""
        psycopg = require_driver()

        def work(conn: Any) -> tuple[int, ImageRecord | None]:
            # an annotator of an open consensus image saves on their branch
            row, image = commit_then_read(
                conn,
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status, branch) "
                f"VALUES (%s, %s, %s, %s, {MY_BRANCH}) RETURNING id",
                (rec.id, base, png, status.value, rec.id),
                f"SELECT pg_notify(%s, %s), {SEEN_COLUMNS} FROM segstudio.images "
                "WHERE id = %s AND removed_at IS NULL",
                (CHANNEL, f"mask_versions:{int(rec.id)}", rec.id),
            )
            return int(row[0]), None if image is None else seen_record(image[1:])

        try:
            new = self._run(work, "save this image's mask")
        except TeamPermissionError:
            # the row-level rules a member's own save can meet: a lease held by someone, an assignment
            self._refuse_if_leased(rec)
            owner = self._row("SELECT assignee FROM segstudio.assignments WHERE image_id = %s", (rec.id,))
            if owner is not None and owner[0] != self.member:
                raise TeamPermissionError(
                    f"{rec.rel_path} is assigned to {owner[0]}, so only they (or a lead) may save its mask; "
                    "nothing was written. Ask your lead to reassign it (`segstudio team assign`)."
                ) from None
            raise LeaseError(
                f"{rec.rel_path} was being edited by another member when you saved, so nothing was written; "
                "your pixels are still in the window, save again"
            ) from None
        except psycopg.Error as error:
            if getattr(error, "sqlstate", None) == schema.STALE_SQLSTATE:
                landed = self._own_save_landed(rec, png, status, base)
                if landed is not None:
                    self._base[rec.id] = landed[0]
                    return landed
                kept = self._kept_mine(rec, base)
                if kept is not None:  # out of consensus keeping my branch: go on on the main line
                    return self._insert_version(rec, png, status, kept)
                if self._closed_branch(rec, base):
                    raise self._branch_refusal(rec, error) from None
                raise self._stale(rec, png, error) from None
            if getattr(error, "sqlstate", None) == schema.CONSENSUS_SQLSTATE:
                raise self._branch_refusal(rec, error) from None
            if getattr(error, "sqlstate", None) == "P0002":
                raise ProjectError(
                    f"{rec.rel_path} was removed from the team project by a lead, so this save was not stored; "
                    "your pixels are still in the window (ask the lead to `segstudio team restore` it)"
                ) from None
            raise TeamError(f"the team server refused the save of {rec.rel_path}: {error}") from None
        self._base[rec.id] = new[0]
        return new

    def _own_save_landed(
        self, rec: ImageRecord, png: bytes | None, status: Status, base: int | None
    ) -> tuple[int, ImageRecord | None] | None:
        """This very save, already committed: (its version, the image row), else None.

        Why: when the link drops after the server committed a save but before the answer arrived, the
        retry (at once, or from the outbox on reconnect) finds the head moved past `base` - by the
        member's own save. Refusing it as stale would tell them their work was not applied and keep a
        needless copy. It is the same save when the head of the version line they save on is theirs,
        made on `base`, with the same pixels and status."""
        sql = (  # not through _read: its away-cache would keep the pixels as a key
            f"SELECT v.id FROM {_IMAGE_AND_CONSENSUS} JOIN segstudio.mask_versions v ON v.id = {WORK_HEAD} "
            "WHERE i.id = %s AND v.author = current_user AND v.parent IS NOT DISTINCT FROM %s "
            "AND v.png IS NOT DISTINCT FROM %s AND v.status = %s"
        )
        row = self._run(
            lambda c: c.execute(sql, (rec.id, base, png, status.value)).fetchone(), "check a refused save"
        )
        if row is None:
            return None
        image = self._row(f"SELECT {SEEN_COLUMNS} FROM segstudio.images WHERE id = %s", (rec.id,))
        return int(row[0]), None if image is None else seen_record(image)

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
        return self._save_or_queue(rec, encode_png(mask), status, base)  # type: ignore[arg-type]

    def delete_mask(self, rec: ImageRecord, status: Status | str | None = None) -> ImageRecord:
        """'Reset to prediction' as a new version without a mask: the earlier versions stay."""
        current = self._require(rec)
        if status is None:
            status = Status.PREDICTED if self.has_prediction(current) else Status.NEW
        return self._save_or_queue(current, None, status_of(status), self.base_version(current))

    # ---------------------------------------------------------------- saves while the server is away

    def _save_or_queue(
        self, rec: ImageRecord, png: bytes | None, status: Status, base: int | None
    ) -> ImageRecord:
        """Save on the server, or queue the save locally when the server cannot be reached.

        A save of an image that already has a queued save is queued behind it (one entry per image,
        keeping the version the member started from), so the order of a member's saves never changes.
        """
        with self._lock:
            queued = self.outbox.get(rec.id) is not None
            if not queued:
                try:
                    _, shown = self._insert_version(rec, png, status, base)
                except TeamConnectionError:
                    pass
                else:
                    return shown or replace(rec, status=status, updated_at=time.time())
            self.outbox.put(rec.id, rec.rel_path, base, status.value, png)
        if queued:
            with contextlib.suppress(TeamError):
                self.flush_pending()
        return replace(rec, status=status, updated_at=time.time())

    def _change_or_queue(
        self, rec: ImageRecord, what: str, status: Status | None = None, split: str | None = None
    ) -> ImageRecord:
        """A status/split change on the server, or queued behind the image's queued save (in order) when
        the server cannot be reached or something of the image is queued already."""
        with self._lock:
            queued = self.outbox.get(rec.id) is not None
            if not queued:
                try:
                    return self._apply_change(rec, what, status, split, ...)
                except TeamConnectionError:
                    base = self.base_version(rec)  # known from load_mask, or the last read of the image
            else:
                base = None  # the queued entry keeps the version it started from
            self.outbox.put_change(rec.id, rec.rel_path, base, status and status.value, split)
        if queued:
            with contextlib.suppress(TeamError):
                self.flush_pending()
        values: dict[str, Any] = {"updated_at": time.time()}
        if status is not None:
            values["status"] = status
        if split is not None:
            values["split"] = split
        return replace(rec, **values)

    def _apply_change(
        self, rec: ImageRecord, what: str, status: Status | None, split: str | None, base: object
    ) -> ImageRecord:
        """UPDATE the image's status/split; with a `base` version (a queued change; None: no mask yet) only
        while the mask is still at it (`...`: unchecked, a change made online). LeaseError while another
        member edits the image; StaleSaveError when someone saved it since."""
        values: dict[str, Any] = {"updated_at": time.time()}
        if status is not None:
            values["status"] = status.value
        if split is not None:
            values["split"] = split
        sets = ", ".join(f"{name} = %s" for name in values)
        check = "" if base is ... else " AND mask_head IS NOT DISTINCT FROM %s::bigint"
        params = (*values.values(), rec.id) + (() if base is ... else (base,))
        row = self._row(
            f"UPDATE segstudio.images SET {sets} WHERE id = %s AND removed_at IS NULL{check} "
            f"RETURNING {SEEN_COLUMNS}",
            params,
            what,
        )
        if row is not None:
            return seen_record(row)
        self._refuse_if_leased(rec)
        if base is not ... and self._head(rec.id) != base:
            last = self._row(
                "SELECT v.author, to_char(v.created_at, 'YYYY-MM-DD HH24:MI:SS') FROM segstudio.images i "
                "JOIN segstudio.mask_versions v ON v.id = i.mask_head WHERE i.id = %s",
                (rec.id,),
            )
            who, when = (last[0], last[1]) if last else ("another member", "just now")
            raise StaleSaveError(f"{rec.rel_path} was saved by {who} at {when} after the version you saw")
        raise ProjectError(f"image {rec.rel_path} is no longer part of the team project")

    def _png_of(self, version: int | None) -> bytes | None:
        row = (
            None
            if version is None
            else self._row("SELECT png FROM segstudio.mask_versions WHERE id = %s", (version,))
        )
        return None if row is None or row[0] is None else bytes(row[0])

    def pending_saves(self) -> dict[str, float]:
        """rel_path -> time queued, for this member's saves not yet on the server."""
        return {p.rel_path: p.queued_at for p in self.outbox.pending()}

    def take_conflicts(self) -> list[SaveConflict]:
        """Queued saves refused on reconnect since the last call (each says where the pixels are kept)."""
        with self._lock:
            found, self.conflicts[:] = list(self.conflicts), []
        return found

    def flush_pending(self) -> int:
        """Send the queued saves, oldest first; the number that landed. TeamConnectionError: still away.

        A queued save refused as stale (someone saved the image after the version it started from) is
        never applied: its pixels go to the outbox's `kept/` folder and a SaveConflict tells the member.
        An image another member is editing now is retried later.
        """
        landed = 0
        with self._lock:
            for entry in self.outbox.pending():
                rec = self.get_by_id(entry.image_id)
                if rec is None:
                    self._keep(entry, "the image is no longer part of the team project")
                    continue
                try:
                    if entry.save:
                        version, _ = self._insert_version(rec, entry.png, Status(entry.status), entry.base)
                        rest = self.outbox.saved(entry, version)
                        if rest is None:
                            landed += 1
                            continue
                        entry = rest  # the status/split change queued after the save, on the saved version
                    if entry.then_status is not None and self._my_branch(rec.id) is not None:
                        # a consensus annotator's status lives on their branch: a version there
                        branch_version, _ = self._insert_version(
                            rec, self._png_of(entry.base), Status(entry.then_status), entry.base
                        )
                        rest = self.outbox.saved(replace(entry, then_status=None), branch_version)
                        if rest is None:
                            landed += 1
                            continue
                        entry = rest
                    self._apply_change(
                        rec,
                        "apply a queued change",
                        None if entry.then_status is None else Status(entry.then_status),
                        entry.then_split,
                        entry.base,
                    )
                except StaleSaveError as error:
                    self._keep(
                        entry,
                        str(error)
                        .split(" after you opened it", 1)[0]
                        .split(" after the version you saw", 1)[0]
                        .replace(f"{rec.rel_path} was saved", "it was saved")
                        + " while you were away from the server",
                    )
                except LeaseError:
                    continue  # being edited by someone now: retried later
                except TeamConnectionError:
                    raise
                except (TeamError, ProjectError) as error:
                    self._keep(entry, str(error))
                else:
                    self.outbox.done(entry)
                    landed += 1
        return landed

    def _keep(self, entry: PendingSave, why: str) -> None:
        kept = self.outbox.keep(entry)
        parts = []
        if entry.save:
            parts.append("save")
        if entry.then_status is not None:
            parts.append(f"status change to {entry.then_status!r}")
        if entry.then_split is not None:
            parts.append(f"split change to {entry.then_split!r}")
        if kept:
            where = f"your pixels are kept in {kept}"
        elif entry.save:
            where = "your queued reset was dropped"
        else:
            where = "the change was dropped"
        self.conflicts.append(
            SaveConflict(
                entry.rel_path,
                kept,
                f"your {' and '.join(parts)} of {entry.rel_path} made while the team server was away was not "
                f"applied ({why}), so nothing of theirs was overwritten; {where}. Open the image to see the "
                "team's version and redo your change.",
            )
        )

    def mask_history(self, rec: ImageRecord) -> list[MaskVersion]:
        """Every saved version of the image's mask, oldest first."""
        rows = self._rows(
            "SELECT id, image_id, parent, author, extract(epoch FROM created_at), status, png IS NULL, branch "
            "FROM segstudio.mask_versions WHERE image_id = %s ORDER BY id",
            (rec.id,),
        )
        return [MaskVersion(int(a), int(b), c, d, float(e), f, bool(g), h) for a, b, c, d, e, f, g, h in rows]

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
        waiting = self._row(
            "SELECT annotator_a, annotator_b FROM segstudio.consensus WHERE image_id = %s "
            "AND resolved_version IS NULL",
            (rec.id,),
        )
        if waiting is not None:
            raise ProjectError(
                f"{rec.rel_path} waits for consensus ({waiting[0]} and {waiting[1]} annotate it): resolve it "
                "first (Team -> Compare annotations..., or `segstudio team resolve`), then review the result"
            )
        if head is None:
            raise ProjectError(f"{rec.rel_path} has no saved mask to review")
        verdict = "accepted" if accepted else "rejected"
        try:
            self._run(
                lambda c: c.execute(
                    "INSERT INTO segstudio.reviews(image_id, mask_version, verdict, comment) "
                    "VALUES (%s, %s, %s, %s)",
                    (rec.id, head, verdict, comment),
                ),
                f"review (mark {verdict}) this image - reviewers review others' work",
            )
        except require_driver().Error as error:
            if getattr(error, "sqlstate", None) == "P0002":
                raise ProjectError(
                    f"{rec.rel_path} was removed from the team project by a lead: not reviewed"
                ) from None
            raise
        review = self.review_of(rec)
        assert review is not None
        return review

    def review_of(self, rec: ImageRecord) -> Review | None:
        """The latest verdict on the image's current version (a new save clears it), or None."""
        row = self._row(
            "SELECT r.verdict, r.comment, r.reviewer, r.mask_version, extract(epoch FROM r.created_at) "
            "FROM segstudio.reviews r JOIN segstudio.images i ON i.id = r.image_id AND r.mask_version = i.mask_head "
            "WHERE r.image_id = %s AND segstudio.consensus_state(r.image_id) IS DISTINCT FROM 'open' "
            "ORDER BY r.id DESC LIMIT 1",
            (rec.id,),
        )
        return None if row is None else Review(row[0], row[1], row[2], int(row[3]), float(row[4]))
