"""Queries and single-row updates of the `images` table (live rows only: `removed_at IS NULL`)."""

from __future__ import annotations

import os
import time
from typing import Any

from segstudio.core.errors import ProjectError
from segstudio.core.store_records import IMAGE_COLUMNS, ImageRecord, Status, db_path, image_record, status_of
from segstudio.core.store_schema import StoreDB

__all__ = ["ImageTable"]


class ImageTable:
    """Reads and per-image writes; every write returns the fresh record."""

    def __init__(self, store: StoreDB) -> None:
        self._store = store

    def list(self, status: Status | str | None = None, split: str | None = None) -> list[ImageRecord]:
        sql = f"SELECT {IMAGE_COLUMNS} FROM images WHERE removed_at IS NULL"
        params: list[Any] = []
        if status is not None:
            sql += " AND status = ?"
            params.append(status_of(status).value)
        if split is not None:
            sql += " AND split = ?"
            params.append(split)
        sql += " ORDER BY sort_key, rel_path"
        return [image_record(row) for row in self._store.fetchall(sql, params)]

    def count(self, where: str = "") -> int:
        """Live images, optionally narrowed by an extra SQL condition (a constant, never user input)."""
        condition = f" AND ({where})" if where else ""
        row = self._store.fetchone(f"SELECT COUNT(*) FROM images WHERE removed_at IS NULL{condition}")
        return int(row[0]) if row else 0

    def get(self, rel_path: str) -> ImageRecord | None:
        row = self._store.fetchone(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE rel_path = ? AND removed_at IS NULL",
            (db_path(rel_path.replace(os.sep, "/")),),
        )
        return None if row is None else image_record(row)

    def get_by_id(self, image_id: int) -> ImageRecord | None:
        row = self._store.fetchone(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = ? AND removed_at IS NULL", (int(image_id),)
        )
        return None if row is None else image_record(row)

    def require(self, rec: ImageRecord | int) -> ImageRecord:
        """The current record, or a ProjectError saying the image has left the project."""
        image_id = rec if isinstance(rec, int) else rec.id
        current = self.get_by_id(image_id)
        if current is None:
            name = rec.rel_path if isinstance(rec, ImageRecord) else f"#{image_id}"
            raise ProjectError(
                f"image {name} is no longer part of the project (was it deleted or moved away?)"
            )
        return current

    def counts(self) -> dict[Status, int]:
        """Number of live images per status (every status present, zeros included)."""
        result = {status: 0 for status in Status}
        for status, count in self._store.fetchall(
            "SELECT status, COUNT(*) FROM images WHERE removed_at IS NULL GROUP BY status"
        ):
            result[Status(status)] = count
        return result

    def split_counts(self) -> dict[str, int]:
        rows = self._store.fetchall(
            "SELECT split, COUNT(*) FROM images WHERE removed_at IS NULL GROUP BY split"
        )
        return {str(split): int(count) for split, count in rows}

    def update(self, rec: ImageRecord | int, **values: Any) -> ImageRecord:
        """Set columns of one live image (names from this module's callers only) and touch updated_at."""
        with self._store.lock:
            current = self.require(rec)
            values["updated_at"] = time.time()
            assignments = ", ".join(f"{name}=?" for name in values)
            with self._store.transaction() as conn:
                conn.execute(f"UPDATE images SET {assignments} WHERE id=?", (*values.values(), current.id))
            return self.require(current.id)
