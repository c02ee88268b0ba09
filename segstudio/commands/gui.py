"""`segstudio [FOLDER]`: open the annotation window (Qt is imported only here, lazily)."""

from __future__ import annotations

import argparse
from pathlib import Path

from segstudio.core.errors import ProjectError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", help="image folder to open (optional)")
    parser.add_argument("--project-dir", help="keep project state here instead of FOLDER/.segstudio")
    parser.add_argument(
        "--db",
        help="join the team project on this server: postgresql://USER@HOST:PORT/DATABASE (docs/team.md)",
    )
    parser.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add SegStudio to this user's application menu (Linux) and exit",
    )


def _check_folder(folder: str) -> None:
    """Before any display check or window: a typo'd command or path gets its own clear message."""
    path = Path(folder).expanduser()
    if path.is_dir():
        return
    from segstudio.cli import COMMANDS

    if not path.exists() and len(path.parts) == 1 and not path.suffix:
        raise UsageError(
            f"{folder!r} is neither a command nor a folder; the commands are: {', '.join(COMMANDS)} "
            "(`segstudio --help`), or give the folder that contains your images"
        )
    what = "does not exist" if not path.exists() else "is not a folder"
    raise ProjectError(f"{folder} {what}; give the folder that contains your images")


def run(args: argparse.Namespace) -> int:
    if args.install_desktop_entry:
        from segstudio.desktop_entry import install_desktop_entry

        for path in install_desktop_entry():
            print(f"wrote {path}")
        return 0
    joining = args.db and args.folder is not None and not Path(args.folder).expanduser().exists()
    if args.folder is not None and not joining:  # a new folder may join a team keeping its images
        _check_folder(args.folder)
    from segstudio.gui.app import run_app  # Qt import deferred until a window is really wanted

    if args.db and args.folder is None:
        raise UsageError("--db needs the image folder too: segstudio FOLDER --db URL")
    if args.db:  # fail before any window: a wrong URL or password is one paragraph on the terminal
        from segstudio.team.connection import connect, require_driver
        from segstudio.team.image_store import images_in_server

        conn = connect(args.db)
        try:
            if joining:
                try:
                    stored = images_in_server(conn)
                except require_driver().Error:
                    stored = False  # not a team project: the window's open says so
                if not stored:
                    _check_folder(args.folder)
        finally:
            conn.close()
    return run_app(args.folder, project_dir=args.project_dir, db=args.db)
