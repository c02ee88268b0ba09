"""Pre-annotation spread over ranks and machines: the standard PostgreSQL work queue.

A rank claims a batch of unpredicted images with `SELECT ... FOR UPDATE SKIP LOCKED` (ranks never wait
for each other, never get the same rows); the claim carries the rank's token and expires, so a rank that
dies mid-batch only delays its images until the claim runs out, when any other rank takes them. A result
is stored only if the rank still holds the claim, in the same transaction that marks the image done: an
image is stored exactly once even when a slow rank's claim was taken over.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from segstudio.core.store_records import ImageRecord
from segstudio.team.project import TeamProject

__all__ = ["WorkQueue"]


class WorkQueue:
    def __init__(self, project: TeamProject, claim_seconds: float = 300.0) -> None:
        self.project = project
        self.claim_seconds = float(claim_seconds)
        #: host:pid:random - who holds a claim (the pid lets an operator find a stuck rank)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def enqueue(self) -> int:
        """Add every image still to predict (not done/skipped, readable, no prediction); idempotent."""
        return int(
            self.project._run(
                lambda c: (
                    c.execute(
                        "INSERT INTO segstudio.predict_queue(image_id) SELECT i.id FROM segstudio.images i "
                        "WHERE i.removed_at IS NULL AND i.error IS NULL AND i.status NOT IN ('done', 'skipped') "
                        "AND NOT EXISTS (SELECT 1 FROM segstudio.predictions p WHERE p.image_id = i.id) "
                        "ON CONFLICT (image_id) DO NOTHING"
                    ).rowcount
                ),
                "fill the prediction queue",
            )
        )

    def claim(self, size: int) -> list[ImageRecord]:
        """Up to `size` images nobody holds (free, or claimed by a rank whose claim expired)."""
        rows = self.project._rows(
            "WITH picked AS (SELECT image_id FROM segstudio.predict_queue "
            "  WHERE done_at IS NULL AND (expires_at IS NULL OR expires_at < now()) "
            "  ORDER BY image_id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "UPDATE segstudio.predict_queue q SET claim = %s, claimed_by = current_user, "
            "  expires_at = now() + make_interval(secs => %s) "
            "FROM picked WHERE q.image_id = picked.image_id RETURNING q.image_id",
            (int(size), self.token, self.claim_seconds),
            "claim images to predict",
        )
        records = [self.project.get_by_id(int(r[0])) for r in rows]
        return sorted((r for r in records if r is not None), key=lambda r: r.id)

    def finish(self, rec: ImageRecord, blobs: tuple[Any, ...], model_version: str) -> bool:
        """Store the prediction if this rank still holds the claim; False when another rank took it over."""

        def work(conn: Any) -> bool:
            with conn.transaction():
                held = conn.execute(
                    "UPDATE segstudio.predict_queue SET done_at = now() "
                    "WHERE image_id = %s AND claim = %s AND done_at IS NULL",
                    (rec.id, self.token),
                ).rowcount
                if held != 1:
                    return False
                self.project.store_prediction(conn, rec, blobs, model_version)
                return True

        return bool(self.project._run(work, "store a prediction"))

    def give_back(self, image_ids: list[int]) -> None:
        """Release claims this rank will not finish (an unreadable image, a stop)."""
        if image_ids:
            self.project._run(
                lambda c: c.execute(
                    "UPDATE segstudio.predict_queue SET claim = NULL, expires_at = NULL "
                    "WHERE claim = %s AND image_id = ANY(%s) AND done_at IS NULL",
                    (self.token, image_ids),
                ),
                "give back claimed images",
            )

    def mark_unpredictable(self, image_id: int) -> None:
        """An image this machine cannot read is finished for the queue (reported, not retried forever)."""
        self.project._run(
            lambda c: c.execute(
                "UPDATE segstudio.predict_queue SET done_at = now() WHERE image_id = %s AND claim = %s",
                (image_id, self.token),
            ),
            "mark an image unreadable",
        )

    def outstanding(self) -> int:
        """Images not yet done, claimed or not (0: the whole queue is finished)."""
        row = self.project._row("SELECT count(*) FROM segstudio.predict_queue WHERE done_at IS NULL")
        return int(row[0]) if row else 0
