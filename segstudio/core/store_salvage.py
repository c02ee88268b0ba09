"""Read whatever rows a damaged SQLite file still gives up, table by table.

Python's sqlite3 has no `.recover`, so two ways are tried, best first:
1. the `sqlite3` command-line shell's `.recover` (when installed and working: some distributions
   ship a shell whose `.recover` fails), replayed into a fresh file that is then read normally;
2. row-by-row salvage: each table read whole, or where that fails, by rowid ranges halved around
   the damaged pages, so one bad page costs only the rows on it.

Only reads; the caller works on a copy of the damaged file.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Salvage", "salvage"]

#: The project's tables (core.store_schema), in the order they are rebuilt.
TABLES = ("meta", "settings", "images", "model_versions", "effort")
_CHUNK = 512
_GUESS_MAX_ROWID = 200_000


@dataclass
class Salvage:
    """Rows per table as column -> value dicts, and how they were read."""

    method: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _recover_with_shell(damaged: Path, work: Path) -> Path | None:
    """The file `.recover` rebuilt, or None when the shell is missing or its `.recover` fails."""
    shell = shutil.which("sqlite3")
    if shell is None:
        return None
    try:
        result = subprocess.run(
            [shell, str(damaged), ".recover"], capture_output=True, timeout=600, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    script = result.stdout.decode("utf-8", errors="surrogateescape")
    if result.returncode != 0 or "COMMIT" not in script:
        return None
    rebuilt = work / "recovered.db"
    try:
        with contextlib.closing(sqlite3.connect(rebuilt)) as conn:
            conn.executescript(script)
    except (sqlite3.Error, UnicodeError):
        return None
    return rebuilt


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
    except sqlite3.Error:
        return []


def _max_rowid(conn: sqlite3.Connection, table: str) -> int:
    for sql, params in ((f'SELECT max(rowid) FROM "{table}"', ()),
                        ("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))):  # fmt: skip
        with contextlib.suppress(sqlite3.Error):
            row = conn.execute(sql, params).fetchone()
            if row and isinstance(row[0], int):
                return row[0]
    return _GUESS_MAX_ROWID


def _read_table(conn: sqlite3.Connection, table: str) -> tuple[list[dict[str, Any]], int]:
    """The readable rows and how many rowid ranges could not be read."""
    columns = _columns(conn, table)
    if not columns:
        return [], 0
    quoted = ", ".join(f'"{c}"' for c in columns)
    select = f'SELECT {quoted} FROM "{table}"'
    try:
        return [dict(zip(columns, row, strict=True)) for row in conn.execute(select).fetchall()], 0
    except sqlite3.Error:
        pass
    rows: list[dict[str, Any]] = []
    lost = 0

    def grab(low: int, high: int) -> None:
        nonlocal lost
        try:
            found = conn.execute(f"{select} WHERE rowid BETWEEN ? AND ?", (low, high)).fetchall()
        except sqlite3.Error:
            if low == high:
                lost += 1
                return
            middle = (low + high) // 2
            grab(low, middle)
            grab(middle + 1, high)
            return
        rows.extend(dict(zip(columns, row, strict=True)) for row in found)

    top = _max_rowid(conn, table)
    for start in range(0, top + 1, _CHUNK):
        grab(start, start + _CHUNK - 1)
    return rows, lost


def _read_all(path: Path, method: str) -> Salvage:
    found = Salvage(method)
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        found.notes.append(f"the file cannot be opened at all ({error})")
        return found
    with contextlib.closing(conn):
        for table in TABLES:
            rows, lost = _read_table(conn, table)
            found.tables[table] = rows
            if lost:
                found.notes.append(f"{table}: {lost} row(s) on damaged pages could not be read")
    return found


def salvage(damaged: Path, work: Path) -> Salvage:
    """Every readable row of the project tables in `damaged` (a copy; `work` is a scratch folder)."""
    if not damaged.is_file() or damaged.stat().st_size == 0:
        return Salvage("nothing to read (the file is empty or missing)", {t: [] for t in TABLES})
    rebuilt = _recover_with_shell(damaged, work)
    if rebuilt is not None:
        found = _read_all(rebuilt, "sqlite3 .recover")
        if any(found.tables.values()):
            return found
    return _read_all(damaged, "row-by-row salvage")
