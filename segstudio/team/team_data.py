"""Shared team data as TeamProject methods: predictions, effort per member, model versions.

Split from `team.project` (the facade) so each file has one job.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.effort import EffortRow
from segstudio.core.errors import ProjectError
from segstudio.core.store_masks import check_shape
from segstudio.core.store_records import ImageRecord, ModelVersion, Prediction, path_from_db
from segstudio.team.blobs import decode_png, encode_png
from segstudio.team.server_paths import server_named_path

__all__ = ["TeamData"]


class TeamData:
    """Mixed into TeamProject, which provides `_run`, `_row`, `_rows`, `_require` and `state_dir`."""

    state_dir: Path
    _run: Any
    _row: Any
    _rows: Any
    _require: Any

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
            row = EffortRow(path_from_db(rel), status, version, float(seconds), dict(actions), changed)
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

    def training_samples(self) -> tuple[list[Any], list[Any]]:
        """Fine-tuning trains on the accepted images only (see team.fine_tune)."""
        from segstudio.team.fine_tune import accepted_samples

        return accepted_samples(self)

    def next_version_name(self) -> str:
        from segstudio.team.fine_tune import next_version_name

        return next_version_name(self)

    def _version(self, row: tuple[Any, ...]) -> ModelVersion:
        version, name, arch, metrics, parent, created = row
        path = server_named_path(self.state_dir, name, f"the checkpoint of model version {version!r}", True)
        return ModelVersion(version, path, arch, dict(metrics), parent, float(created))

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
