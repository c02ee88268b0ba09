"""Per-image editing effort (the `effort` table): active seconds, actions per tool, changed fraction."""

from __future__ import annotations

import json
import sqlite3
import time

from segstudio.core.effort import EffortRow
from segstudio.core.store_schema import StoreDB

__all__ = ["EffortTable"]


class EffortTable:
    def __init__(self, store: StoreDB) -> None:
        self._store = store

    def add(
        self, image_id: int, seconds: float, actions: dict[str, int], changed_fraction: float | None
    ) -> None:
        """Add a session's seconds and actions to the image's totals; the changed fraction is replaced."""
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT active_seconds, actions FROM effort WHERE image_id=?", (image_id,)
            ).fetchone()
            total = dict(json.loads(row[1])) if row else {}
            for tool, count in actions.items():
                total[tool] = int(total.get(tool, 0)) + int(count)
            conn.execute(
                "INSERT INTO effort(image_id, active_seconds, actions, changed_fraction, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(image_id) DO UPDATE SET active_seconds=excluded.active_seconds, "
                "actions=excluded.actions, changed_fraction=COALESCE(excluded.changed_fraction, changed_fraction), "
                "updated_at=excluded.updated_at",
                (
                    image_id,
                    (row[0] if row else 0.0) + float(seconds),
                    json.dumps(total),
                    changed_fraction,
                    time.time(),
                ),
            )

    def rows(self) -> list[EffortRow]:
        """Effort of every live image that has some, with its status and prediction's model version."""
        try:
            raw = self._store.fetchall(
                "SELECT i.rel_path, i.status, i.model_version, e.active_seconds, e.actions, e.changed_fraction "
                "FROM effort e JOIN images i ON i.id = e.image_id WHERE i.removed_at IS NULL ORDER BY i.sort_key"
            )
        except sqlite3.OperationalError:  # a read-only view of a project saved before the table existed
            return []
        return [EffortRow(p, s, v, float(sec), json.loads(a), c) for p, s, v, sec, a, c in raw]
