"""Project settings (the `settings` table) and the label scheme (kept in `meta`).

Two settings act at once when set: `val_fraction` re-assigns every split, `max_pixels` marks the
images the new cap may affect so the next reconcile reads them again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from segstudio.core import images as image_io
from segstudio.core import store_health
from segstudio.core.errors import ProjectError, SchemeError
from segstudio.core.schemes import LabelScheme, get_scheme, printable_scheme_dict, voc_scheme
from segstudio.core.store_records import split_for_hash
from segstudio.core.store_schema import StoreDB

__all__ = ["DEFAULT_VAL_FRACTION", "Settings", "choose_scheme", "load_scheme"]

DEFAULT_VAL_FRACTION = 0.2


def _validate(key: str, value: Any) -> str:
    """The JSON text to store, or a ProjectError saying what a valid value looks like."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as error:
        raise ProjectError(f"setting {key!r} must be JSON-serialisable: {error}") from None
    if (
        key == "max_pixels"
        and value is not None
        and (isinstance(value, bool) or not isinstance(value, int) or value <= 0)
    ):
        raise ProjectError(
            f"max_pixels must be a positive whole number (or null for no limit), got {value!r}"
        )
    if key == "val_fraction":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ProjectError(f"val_fraction must be a number between 0 and 1, got {value!r}")
    return text


class Settings:
    """JSON values by key; see the module docstring for the two keys with side effects."""

    def __init__(self, store: StoreDB) -> None:
        self._store = store

    def get(self, key: str, default: Any = None) -> Any:
        row = self._store.fetchone("SELECT value FROM settings WHERE key = ?", (key,))
        return default if row is None else store_health.parse_json(row[0], f"the setting {key!r}")

    def set(self, key: str, value: Any) -> None:
        """Store the value; the caller reconciles afterwards when `key` is 'max_pixels'."""
        text = _validate(key, value)
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )
            if (
                key == "max_pixels"
            ):  # images the new cap may affect count as changed: reconcile reads them again
                conn.execute(
                    "UPDATE images SET mtime_ns = -1 WHERE removed_at IS NULL AND "
                    "(error IS NOT NULL OR (? IS NOT NULL AND width * height > ?))",
                    (value, value),
                )
            if key == "val_fraction":
                rows = conn.execute("SELECT id, content_hash FROM images").fetchall()
                conn.executemany(
                    "UPDATE images SET split = ? WHERE id = ?",
                    [(split_for_hash(h, float(value)), i) for i, h in rows],
                )

    def _stored(self, key: str, default: Any) -> Any:
        """The stored value, checked as `set` checks it (a database edited by hand is damage, not a crash)."""
        value = self.get(key, default)
        try:
            _validate(key, value)
        except ProjectError as error:
            raise store_health.damage(f"the setting {key!r} holds {value!r}: {error}") from None
        return value

    @property
    def val_fraction(self) -> float:
        return float(self._stored("val_fraction", DEFAULT_VAL_FRACTION))

    @property
    def max_pixels(self) -> int | None:
        value = self._stored("max_pixels", image_io.DEFAULT_MAX_PIXELS)
        return None if value is None else int(value)


def load_scheme(store: StoreDB) -> LabelScheme | None:
    """The stored scheme, None for a new project, ProjectError if it does not parse."""
    stored = store.get_meta("scheme")
    if stored is None:
        return None
    try:
        return LabelScheme.from_dict(stored)
    except SchemeError as error:
        try:  # saved before control characters were refused: open it with them shown as spaces
            return LabelScheme.from_dict(printable_scheme_dict(stored))
        except (SchemeError, TypeError, AttributeError):
            raise store_health.damage(f"the stored label scheme is invalid: {error}") from None


def choose_scheme(
    current: LabelScheme | None, requested: LabelScheme | str | None, has_labels: Callable[[], bool]
) -> LabelScheme | None:
    """The scheme to store when opening, or None to keep `current`.

    A new project gets `requested` (default VOC); an existing one switches only while it has no labels.
    """
    if isinstance(requested, str):
        requested = get_scheme(requested)
    if current is None:
        return requested or voc_scheme()
    if requested is None or requested == current:
        return None
    if has_labels():
        raise ProjectError(
            f"this project already uses the label scheme {current.name!r} and has labels; "
            f"open it without choosing a scheme, or change the scheme inside the project"
        )
    return requested
