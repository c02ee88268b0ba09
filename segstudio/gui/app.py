"""`run_app(folder)`: check the display, create the QApplication, show the main window.

Qt aborts the whole process (no exception) when it cannot load its platform plugin, so the
display and the xcb libraries are checked *before* the QApplication exists, and the user gets
a sentence naming what to install instead of a core dump.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from segstudio.core.logs import LOGGER_NAME, setup_logging

__all__ = ["check_display", "install_excepthook", "missing_xcb_packages", "run_app"]

#: library name (as ctypes.util.find_library wants it) -> Debian package (packaging/system_deps.sh --gui)
XCB_LIBS: dict[str, str] = {
    "xcb-cursor": "libxcb-cursor0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-image": "libxcb-image0",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-randr": "libxcb-randr0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-shape": "libxcb-shape0",
    "xcb-xinerama": "libxcb-xinerama0",
    "xcb-xkb": "libxcb-xkb1",
    "xkbcommon": "libxkbcommon0",
    "EGL": "libegl1",
    "fontconfig": "libfontconfig1",
}


def _ldconfig_names() -> set[str] | None:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.split()[0] for line in out.splitlines()[1:] if line.strip()}


def missing_xcb_packages() -> list[str]:
    """Debian packages whose libraries the xcb platform plugin needs but cannot be found."""
    cached = _ldconfig_names()
    missing = []
    for lib, package in XCB_LIBS.items():
        if cached is not None and any(name.startswith(f"lib{lib}.so") for name in cached):
            continue
        if ctypes.util.find_library(lib):  # slower (spawns tools); only for what ldconfig did not list
            continue
        missing.append(package)
    return missing


def check_display() -> str | None:
    """None when a window can be shown; otherwise a message saying what to do."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return None  # the user chose a platform (offscreen, wayland, vnc…): trust it
    if not sys.platform.startswith("linux"):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return (
            "SegStudio needs a graphical display, and none was found (DISPLAY and WAYLAND_DISPLAY are unset).\n"
            "Run it on a desktop, over `ssh -X`, or under a virtual display: `xvfb-run segstudio FOLDER`.\n"
            "The headless commands (`segstudio predict|export|train|...`) work without one."
        )
    if os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        missing = missing_xcb_packages()
        if missing:
            return (
                "Qt cannot open a window: these system libraries are missing: " + ", ".join(missing) + ".\n"
                f"Install them with: sudo apt-get install {' '.join(missing)}\n"
                "(or run `bash packaging/system_deps.sh --gui` as root)."
            )
    return None


def install_excepthook(window: Any) -> Callable[..., None]:
    """Route exceptions escaping Qt slots to stderr (full traceback) *and* an error box in `window`.

    PySide6 hands such exceptions to sys.excepthook and carries on: without this the user would
    see nothing at all (the action silently did nothing), or only a terminal they may not watch.
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, error, tb)
            return
        if logging.getLogger(LOGGER_NAME).handlers:  # stderr and the log file, traceback included
            logging.getLogger(f"{LOGGER_NAME}.slot").error(
                "unhandled %s: %s", kind.__name__, error, exc_info=(kind, error, tb)
            )
        else:
            traceback.print_exception(kind, error, tb, file=sys.stderr)
        try:
            window.show_error(
                "Unexpected error",
                f"{kind.__name__}: {error}\n\nSegStudio keeps running and your saved work is safe; the details "
                "are in the log (Help > Open log folder; please include them in a bug report).",
            )
        except Exception:
            traceback.print_exc(file=sys.stderr)

    sys.excepthook = hook
    _install_thread_hook(window, hook)
    return hook


def _install_thread_hook(window: Any, hook: Callable[..., None]) -> None:
    """Exceptions escaping a plain worker thread (not a TaskRunner job, which reports its own) take
    the same way: logged with the traceback and shown in `window`. The box is shown from the GUI
    thread through a queued signal (a widget must never be touched from a worker thread)."""
    import threading

    from PySide6.QtCore import QObject, Signal

    class _Relay(QObject):
        raised = Signal(object)

    relay = _Relay(window)  # lives in the GUI thread: emits from other threads are queued to it
    relay.raised.connect(lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback))
    window._thread_error_relay = relay  # kept alive with the window

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        try:
            relay.raised.emit(args)
        except RuntimeError:  # the window is gone: the terminal is all that is left
            traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=sys.stderr)

    threading.excepthook = thread_hook


def run_app(
    folder: str | os.PathLike[str] | None,
    project_dir: str | os.PathLike[str] | None = None,
    db: str | None = None,
) -> int:
    """Show the annotation window on `folder` (or an empty one: File → Open recent); returns the exit code.

    `db`: open the folder as the team project on that server (docs/team.md)."""
    problem = check_display()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if folder is not None and not Path(folder).is_dir() and (db is None or Path(folder).exists()):
        print(f"{folder} is not a folder; give the folder that contains your images", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    setup_logging()  # the user's log folder until a project opens (then its state folder)
    early = None
    if folder is not None and db is None:  # opened while the window's modules load (see EarlyOpen)
        from segstudio.gui.opener import EarlyOpen

        early = EarlyOpen(str(folder), None if project_dir is None else str(project_dir))
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from segstudio.gui.gui_thread_gc import install_gui_thread_gc

    install_gui_thread_gc(app)  # before any worker starts (see its module)
    app.setApplicationName("SegStudio")
    app.setOrganizationName("SegStudio")
    from segstudio.assets import icon_path

    icon = icon_path()
    if icon is not None:
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    settings = AppSettings()
    window = MainWindow(settings)
    install_excepthook(window)
    window.show()
    if folder is not None:
        window.open_folder(folder, project_dir, early=early, db=db)
    return int(app.exec())
