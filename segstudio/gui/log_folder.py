"""Where the GUI's log goes: the open project's state folder, else the user's log folder (core.logs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from segstudio.core.logs import project_log_dir, setup_logging

__all__ = ["open_log_folder", "use_project_logs"]


def use_project_logs(project: Any | None) -> Path | None:
    """Move the log file to `project`'s state folder (None: the user's); returns the folder in use."""
    return setup_logging(project_log_dir(project.state_dir) if project is not None else None)


def open_log_folder(project: Any | None) -> Path | None:
    """Help > Open log folder: show the folder in the file manager; returns it (None if none is writable)."""
    folder = use_project_logs(project)
    if folder is not None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
    return folder
