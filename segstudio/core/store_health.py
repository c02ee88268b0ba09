"""Is the project database trustworthy enough to open? Checked at every open, before any migration.

Why: a `project.db` cut to 0 bytes used to reopen as a brand-new project (exit 0): statuses went
back to `new` and the scheme to VOC, so the masks on disk were read with the wrong class names. A
database that is emptied, lost tables, has damaged pages or holds values that do not parse now
stops the open with `DamagedProjectError`, and `segstudio repair FOLDER` (`core.store_repair`)
salvages it. Only a state folder with no work in it (no masks, predictions or models) may start
over from an empty database.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from segstudio.core.errors import DamagedProjectError

__all__ = [
    "REQUIRED_TABLES",
    "check_file",
    "check_schema",
    "damage",
    "has_work",
    "is_damage",
    "parse_json",
    "repair_hint",
]

SQLITE_HEADER = b"SQLite format 3\x00"

#: Tables each schema version must have (index = PRAGMA user_version).
REQUIRED_TABLES: list[tuple[str, ...]] = [
    (),
    ("meta", "settings", "images", "model_versions"),
    ("meta", "settings", "images", "model_versions", "effort"),
]

_WORK_FOLDERS = ("masks", "predictions", "models")


def damage(detail: str) -> DamagedProjectError:
    """The error for a damaged database; `Project.open` rewrites it with the folder and the repair command."""
    error = DamagedProjectError(
        f"the project database is damaged ({detail}); run `segstudio repair` on the image folder"
    )
    error.detail = detail  # type: ignore[attr-defined]
    return error


def repair_hint(db_path: Path, detail: str, image_dir: Path, state_dir: Path | None, masks: int) -> str:
    """The one paragraph shown when an open stops on a damaged database."""
    command = f"segstudio repair {image_dir}" + (
        f" --project-dir {state_dir}" if state_dir is not None else ""
    )
    kept = f"your {masks} mask file(s) are untouched" if masks else "nothing was changed"
    return (
        f"the project database {db_path} is damaged ({detail}). SegStudio stopped instead of starting a new "
        f"project over it; {kept}. Run `{command}`: it salvages what is readable into a new database, "
        "re-attaches the masks on disk, and keeps the damaged file beside it (project.db.damaged-<time>)"
    )


def is_damage(error: sqlite3.Error) -> bool:
    """True for errors that mean the file's content is bad (not: locked, disk full, no permission)."""
    text = str(error).lower()
    if isinstance(error, sqlite3.OperationalError):
        return any(
            s in text for s in ("no such table", "no such column", "malformed", "not a database", "corrupt")
        )
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.IntegrityError)


def has_work(state_dir: Path) -> int:
    """How many files the state folder's masks, predictions and models folders hold (0 = nothing to lose)."""
    count = 0
    for name in _WORK_FOLDERS:
        try:
            with os.scandir(state_dir / name) as entries:
                count += sum(1 for e in entries if not e.name.startswith("."))
        except OSError:
            continue
    return count


def check_file(db_path: Path, state_dir: Path) -> None:
    """Before connecting (reads only): an emptied or foreign file over existing work is damage."""
    try:
        size = db_path.stat().st_size
        with open(db_path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError:
        return  # the connection reports it with its own message
    if size == 0:
        if has_work(state_dir):
            raise damage("the file is empty (0 bytes) although masks, predictions or models exist")
        return
    if header != SQLITE_HEADER:
        raise damage("the file is not an SQLite database")


def check_schema(conn: sqlite3.Connection, state_dir: Path, existed: bool) -> None:
    """After connecting, before migrating: tables the schema version needs, and no damaged page."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if not 0 <= version < len(REQUIRED_TABLES):
        return  # newer than this SegStudio: `migrate` says so
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0:
        if existed and has_work(state_dir):
            raise damage("it holds no project tables although masks, predictions or models exist")
        return
    missing = [t for t in REQUIRED_TABLES[version] if t not in tables]
    if missing:
        raise damage(f"table(s) {', '.join(missing)} missing")
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise damage("; ".join(str(p) for p in problems[:3]))


def parse_json(text: Any, what: str) -> Any:
    """A stored JSON value, or damage naming the entry."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise damage(f"{what} is not valid JSON") from None
