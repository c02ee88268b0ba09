"""`segstudio --install-desktop-entry`: put SegStudio in the Linux application menu for this user.

A pip/pipx install has no system package to register the app, so this writes the freedesktop entry
(from `packaging/segstudio.desktop`, shipped in the wheel) to `$XDG_DATA_HOME/applications/` with
`Exec=` pointing at this installation's `segstudio`, and the icons to the user's hicolor theme.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from segstudio.assets import desktop_entry_path, icon_path
from segstudio.core.atomic import atomic_write_bytes, atomic_write_text
from segstudio.core.errors import InstallError

__all__ = ["entry_text", "install_desktop_entry"]


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _command() -> list[str]:
    """This installation's launcher: the venv's `segstudio` script, else `python -m segstudio`."""
    script = Path(sys.executable).with_name("segstudio")
    found = str(script) if script.is_file() else shutil.which("segstudio")
    return [found] if found else [sys.executable, "-m", "segstudio"]


def entry_text(template: str, command: list[str]) -> str:
    """The template with `Exec=`/`TryExec=` set to `command` (quoted as the desktop spec wants) and its
    install comments dropped."""
    exec_line = " ".join(f'"{part}"' if " " in part else part for part in command)
    lines = []
    for line in template.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("Exec="):
            line = f"Exec={exec_line} %f"
        elif line.startswith("TryExec="):
            line = f"TryExec={command[0]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def install_desktop_entry(data_home: Path | None = None) -> list[Path]:
    """Write the entry and icons (atomically); returns the files written."""
    template, png, svg = desktop_entry_path(), icon_path("png"), icon_path("svg")
    if template is None or png is None:
        raise InstallError(
            "this installation ships no desktop entry or icon; reinstall SegStudio from its wheel"
        )
    home = data_home or _data_home()
    written = [
        home / "applications" / "segstudio.desktop",
        home / "icons" / "hicolor" / "256x256" / "apps" / "segstudio.png",
    ]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(written[0], entry_text(template.read_text(encoding="utf-8"), _command()))
    atomic_write_bytes(written[1], png.read_bytes())
    if svg is not None:
        written.append(home / "icons" / "hicolor" / "scalable" / "apps" / "segstudio.svg")
        written[-1].parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(written[-1], svg.read_bytes())
    return written
