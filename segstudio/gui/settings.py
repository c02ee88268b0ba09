"""Application preferences (QSettings), created once in `app.py` and passed to every widget.

Why a wrapper: typed getters with defaults in one place, and one switch for isolation — when
`SEGSTUDIO_SETTINGS_DIR` is set (tests do it in conftest.py), settings live in an INI file
there instead of the user's real configuration. Per-project state (last image, zoom, tool)
lives in the project store instead (`Project.set_setting`), so it travels with the project.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

__all__ = ["SETTINGS_ENV", "AppSettings"]

SETTINGS_ENV = "SEGSTUDIO_SETTINGS_DIR"
MAX_RECENT = 10


class AppSettings:
    """Typed access to the preferences; values are stored as JSON strings where structured."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        if qsettings is None:
            folder = os.environ.get(SETTINGS_ENV)
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
                qsettings = QSettings(str(Path(folder) / "segstudio.ini"), QSettings.Format.IniFormat)
            else:
                qsettings = QSettings("SegStudio", "SegStudio")
        self.qsettings = qsettings

    @property
    def path(self) -> str:
        return self.qsettings.fileName()

    # -- generic ---------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        raw = self.qsettings.value(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        self.qsettings.setValue(key, json.dumps(value))

    def sync(self) -> None:
        self.qsettings.sync()

    # -- typed preferences -------------------------------------------------------------------------
    def recent_folders(self) -> list[str]:
        value = self.get("recent_folders", [])
        return [str(v) for v in value] if isinstance(value, list) else []

    def add_recent_folder(self, folder: str | os.PathLike[str]) -> None:
        folder = str(Path(folder).resolve())
        recent = [f for f in self.recent_folders() if f != folder]
        self.set("recent_folders", [folder, *recent][:MAX_RECENT])

    @property
    def overlay_opacity(self) -> float:
        return float(self.get("overlay_opacity", 0.5))

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self.set("overlay_opacity", float(value))

    @property
    def auto_predict(self) -> bool:
        return bool(self.get("auto_predict", False))

    @auto_predict.setter
    def auto_predict(self, value: bool) -> None:
        self.set("auto_predict", bool(value))

    @property
    def autosave_ms(self) -> int:
        return int(self.get("autosave_ms", 800))

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", geometry)
        self.qsettings.setValue("window/state", state)

    def window_geometry(self) -> QByteArray | None:
        value = self.qsettings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self.qsettings.value("window/state")
        return value if isinstance(value, QByteArray) else None
