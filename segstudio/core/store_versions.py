"""Fine-tuned model versions: a name, its checkpoint, architecture, metrics and parent."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple

from segstudio.core.errors import ProjectError
from segstudio.core.store_records import ModelVersion
from segstudio.core.store_schema import StoreDB

__all__ = ["ModelVersions"]

_COLUMNS = "version, checkpoint_path, arch, metrics, parent, created_at"


class _VersionRow(NamedTuple):
    version: str
    checkpoint_path: str  # relative to the state folder when inside it, else absolute
    arch: str
    metrics: str  # JSON
    parent: str | None
    created_at: float


class ModelVersions:
    """The `model_versions` table; checkpoint paths inside the state folder are stored relative to it
    so a project folder can be moved as a whole."""

    def __init__(self, store: StoreDB, state_dir: Path) -> None:
        self._store = store
        self._state_dir = state_dir

    def add(
        self,
        version: str,
        checkpoint_path: str | os.PathLike[str],
        arch: str,
        metrics: dict[str, Any] | None = None,
        parent: str | None = None,
    ) -> ModelVersion:
        if not version or not isinstance(version, str):
            raise ProjectError("a model version needs a name such as 'v3'")
        path = Path(checkpoint_path).absolute()
        try:
            stored = path.relative_to(self._state_dir).as_posix()
        except ValueError:
            stored = str(path)
        created = time.time()
        try:
            with self._store.transaction() as conn:
                conn.execute(
                    f"INSERT INTO model_versions({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (version, stored, arch, json.dumps(metrics or {}), parent, created),
                )
        except sqlite3.IntegrityError:
            raise ProjectError(f"model version {version!r} already exists; use next_version_name()") from None
        return ModelVersion(version, path, arch, dict(metrics or {}), parent, created)

    def _record(self, raw: tuple[Any, ...]) -> ModelVersion:
        row = _VersionRow(*raw)
        path = Path(row.checkpoint_path)
        if not path.is_absolute():
            path = self._state_dir / path
        return ModelVersion(row.version, path, row.arch, json.loads(row.metrics), row.parent, row.created_at)

    def all(self) -> list[ModelVersion]:
        """All recorded versions, oldest first."""
        rows = self._store.fetchall(f"SELECT {_COLUMNS} FROM model_versions ORDER BY created_at, rowid")
        return [self._record(row) for row in rows]

    def get(self, version: str) -> ModelVersion | None:
        row = self._store.fetchone(f"SELECT {_COLUMNS} FROM model_versions WHERE version=?", (version,))
        return None if row is None else self._record(row)

    def next_name(self) -> str:
        numbers = [int(m.group(1)) for v in self.all() if (m := re.fullmatch(r"v(\d+)", v.version))]
        return f"v{max(numbers, default=0) + 1}"
