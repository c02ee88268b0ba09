"""Removing images from a team project and bringing them back, as TeamProject methods (leads).

A lead removes duplicates, blurred frames and images that do not belong. Removal only hides: it sets
`images.removed_at` (schema 7), and every reader of the project lists live images only, so the image
leaves every member's browser, queue, export and training, while its record, mask versions, reviews,
effort rows, assignment and consensus stay on the server untouched; `restore_images` brings it back
exactly as it was. The server enforces who may (leads: annotators and reviewers cannot write the
column) and refuses to remove an image another member is editing (its lease is live), so nobody's
work in progress vanishes from under them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segstudio.core.errors import ProjectError
from segstudio.core.store_records import IMAGE_COLUMNS, ImageRecord, db_path, image_record
from segstudio.team import schema
from segstudio.team.connection import require_driver
from segstudio.team.errors import LeaseError, TeamError

__all__ = ["Removal", "RemovedImage"]


@dataclass(frozen=True)
class RemovedImage:
    record: ImageRecord
    removed_by: str | None
    removed_at: float


class Removal:
    """Mixed into TeamProject (provides `_run`, `_rows`, `_row`, `images`)."""

    _run: Any
    _rows: Any
    _row: Any

    def removed_images(self) -> list[RemovedImage]:
        """The images a lead removed, most recently removed first."""
        rows = self._rows(
            f"SELECT {IMAGE_COLUMNS}, removed_by, removed_at FROM segstudio.images "
            "WHERE removed_at IS NOT NULL ORDER BY removed_at DESC, id DESC"
        )
        return [RemovedImage(image_record(r[:-2]), r[-2], float(r[-1])) for r in rows]

    def removed_count(self) -> int:
        row = self._row("SELECT count(*) FROM segstudio.images WHERE removed_at IS NOT NULL")
        return int(row[0]) if row else 0

    def remove_images(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        """Hide `records` from the project (leads only); all or none. LeaseError, naming the member,
        when another member is editing one of them. The images removed (already removed ones are skipped)."""
        return self._set_removed(records, removed=True)

    def restore_images(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        """Bring removed images back exactly as they were (leads only); all or none."""
        return self._set_removed(records, removed=False)

    def find_removed(self, rel_path: str) -> ImageRecord | None:
        """The most recently removed image with this path (a path may have been removed twice)."""
        path = db_path(rel_path)
        return next((r.record for r in self.removed_images() if db_path(r.record.rel_path) == path), None)

    def _set_removed(self, records: Sequence[ImageRecord], removed: bool) -> list[ImageRecord]:
        ids = [int(r.id) for r in records]
        if not ids:
            return []
        by_id = {int(r.id): r for r in records}
        psycopg = require_driver()
        verb = "remove" if removed else "restore"

        def work(conn: Any) -> list[int]:
            with conn.transaction():
                rows = conn.execute(
                    "UPDATE segstudio.images SET removed_at = "
                    + ("extract(epoch FROM clock_timestamp())" if removed else "NULL")
                    + " WHERE id = ANY(%s) AND removed_at IS "
                    + ("NULL" if removed else "NOT NULL")
                    + " RETURNING id",
                    (ids,),
                ).fetchall()
            return [int(r[0]) for r in rows]

        try:
            changed = self._run(work, f"{verb} images (leads do)")
        except psycopg.Error as error:
            state = getattr(error, "sqlstate", None)
            message = error.diag.message_primary or str(error)
            if state == schema.LEASED_SQLSTATE:
                raise LeaseError(
                    f"{message}, so nothing was {verb}d: ask them to close it (or wait until their lease "
                    f"expires), then {verb} it again"
                ) from None
            if state == "23505":
                raise ProjectError(
                    f"{message}, so nothing was restored; remove that newer image first if the old one should "
                    "take its place"
                ) from None
            raise TeamError(f"the team server refused to {verb} the images: {message}") from None
        done = set(changed)
        return [by_id[i] for i in ids if i in done]
