"""The project database: connection, transactions, the `meta` table and schema migrations.

PRAGMA user_version holds the schema version; MIGRATIONS[n] upgrades a database from version n
to n + 1 inside one transaction. Never edit a released migration: append a new one (SCHEMA_VERSION
follows the list).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from segstudio.core import store_health
from segstudio.core.errors import DiskWriteError, ProjectError
from segstudio.core.store_masks import STATE_DIR_NAME

__all__ = ["DB_NAME", "MIGRATIONS", "SCHEMA_VERSION", "StoreDB", "connect", "connect_read_only", "migrate"]

DB_NAME = "project.db"


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE images (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            rel_path TEXT NOT NULL,
            sort_key TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            width INTEGER,
            height INTEGER,
            content_hash TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            split TEXT NOT NULL,
            model_version TEXT,
            mean_confidence REAL,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            removed_at REAL
        );
        CREATE UNIQUE INDEX images_live_path ON images(rel_path) WHERE removed_at IS NULL;
        CREATE INDEX images_order ON images(sort_key, rel_path);
        CREATE INDEX images_hash ON images(content_hash);
        CREATE TABLE model_versions (
            version TEXT PRIMARY KEY,
            checkpoint_path TEXT NOT NULL,
            arch TEXT NOT NULL,
            metrics TEXT NOT NULL,
            parent TEXT,
            created_at REAL NOT NULL
        );
        """,
    )


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Effort telemetry (core.store_effort): one row per image with editing effort."""
    _run_script(
        conn,
        """
        CREATE TABLE effort (
            image_id INTEGER PRIMARY KEY REFERENCES images(id),
            active_seconds REAL NOT NULL DEFAULT 0,
            actions TEXT NOT NULL DEFAULT '{}',
            changed_fraction REAL,
            updated_at REAL NOT NULL
        )
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1, _migrate_1_to_2]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreDB:
    """The connection with the store's rules: one re-entrant lock, writes refused when read-only.

    Shared by the store modules so that each of them sees the same lock and transaction behaviour.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.conn: sqlite3.Connection | None = None
        self.read_only = False
        self.path: Path | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise ProjectError("the project is closed; open it again")
        return self.conn

    def check_writable(self) -> None:
        if self.read_only:
            raise ProjectError("this project was opened read-only; open it normally to change it")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; ROLLBACK on any exception."""
        self.check_writable()
        with self.lock:
            conn = self.db
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.OperationalError as error:
                raise _as_disk_error(self.path, error) from None

    def fetchall(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        with self.lock:
            row: tuple[Any, ...] | None = self.db.execute(sql, params).fetchone()
            return row

    def get_meta(self, key: str) -> Any:
        row = self.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else store_health.parse_json(row[0], f"the meta entry {key!r}")

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    @property
    def schema_version(self) -> int:
        row = self.fetchone("PRAGMA user_version")
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("PRAGMA optimize")
                self.conn.close()
                self.conn = None


def _as_disk_error(path: Path | None, error: sqlite3.OperationalError) -> Exception:
    """'database or disk is full' becomes a DiskWriteError naming the project; other errors pass unchanged."""
    if "full" in str(error).lower():
        return DiskWriteError(path.parent if path else Path("."), "saving to the project database", error)
    return error


def connect(store: StoreDB, path: Path, image_dir: Path, state_dir: Path) -> None:
    """Open (creating) the database at `path` in WAL mode and migrate it to SCHEMA_VERSION.

    A damaged database (`core.store_health`) raises DamagedProjectError before anything is migrated.
    """
    store_health.check_file(path, state_dir)
    existed = path.exists()
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    except sqlite3.Error as error:
        raise ProjectError(f"cannot open project database {path}: {error}") from None
    store.conn = conn
    store.path = path
    try:
        store_health.check_schema(conn, state_dir, existed)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a process crash never loses a commit; power loss may drop the last
        # few, but never corrupts the database.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(store, image_dir, state_dir)
    except sqlite3.DatabaseError as error:
        if store_health.is_damage(error):
            raise store_health.damage(str(error)) from None
        if "full" in str(error).lower():
            raise _as_disk_error(path, error) from None  # type: ignore[arg-type]
        raise ProjectError(f"cannot open project database {path}: {error}") from None


def connect_read_only(store: StoreDB, path: Path) -> None:
    """Open the database without writing anything; only the current schema can be read this way."""
    store.read_only = True
    store.path = path
    store_health.check_file(path, path.parent)
    try:
        conn = sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
        store.conn = conn
        version = store.schema_version
        store_health.check_schema(conn, path.parent, existed=True)
    except sqlite3.DatabaseError as error:
        if store_health.is_damage(error):
            raise store_health.damage(str(error)) from None
        raise ProjectError(f"cannot read project database {path}: {error}") from None
    if version == 0 and path.stat().st_size == 0:
        raise store_health.damage("the file is empty (0 bytes)")
    if version != SCHEMA_VERSION:
        raise ProjectError(
            f"the project uses schema {version} but this SegStudio reads schema {SCHEMA_VERSION}; "
            "open it normally (not read-only) with the matching SegStudio version"
        )


def migrate(store: StoreDB, image_dir: Path, state_dir: Path) -> None:
    """Upgrade step by step (each step one transaction), then check the state folder's owner."""
    conn = store.db
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"this project was saved by a newer SegStudio (schema {version}, this version reads up to "
            f"{SCHEMA_VERSION}); update SegStudio to open it"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            if version == 0:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('created_at', ?), ('image_dir', ?)",
                    (json.dumps(time.time()), json.dumps(str(image_dir))),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version += 1
    _check_owner(store, image_dir, state_dir)


def _check_owner(store: StoreDB, image_dir: Path, state_dir: Path) -> None:
    """A chosen state folder belongs to one image folder; the sidecar `.segstudio` follows its folder."""
    stored = store.get_meta("image_dir")
    if stored is not None and state_dir.name != STATE_DIR_NAME and Path(stored) != image_dir:
        if Path(stored).exists():
            raise ProjectError(
                f"the project folder {state_dir} belongs to the image folder {stored}; "
                "choose another project folder for this image folder"
            )
    if stored is None or Path(stored) != image_dir:
        store.set_meta("image_dir", str(image_dir))
