"""Smoke test of an *installed* SegStudio (run by packaging/check_wheel.sh with the fresh venv's python,
from a folder outside the source tree): the package is the installed one, it ships its icon, demo and
desktop entry, and the main window starts offscreen on the shipped demo photos."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    import segstudio
    from segstudio.assets import demo_dir, desktop_entry_path, icon_path

    where = Path(segstudio.__file__).resolve()
    assert "site-packages" in where.parts, f"segstudio imported from {where}, not from the installed wheel"
    for name, path in (("icon", icon_path()), ("demo", demo_dir()), ("desktop entry", desktop_entry_path())):
        assert path is not None and "_resources" in path.parts, f"the wheel ships no {name} ({path})"
    photos = sorted(p.name for p in demo_dir().iterdir() if p.suffix == ".jpg")  # type: ignore[union-attr]
    assert len(photos) >= 4, photos

    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SEGSTUDIO_SETTINGS_DIR"] = str(Path(tmp) / "settings")
        os.environ["SEGSTUDIO_LOG_DIR"] = str(Path(tmp) / "logs")
        folder = Path(tmp) / "demo"
        shutil.copytree(demo_dir(), folder)  # type: ignore[arg-type]
        app = QApplication.instance() or QApplication(sys.argv[:1])
        window = MainWindow(AppSettings())
        window.show()
        window.open_folder(folder)
        deadline = 200
        while window.project is None and deadline:
            app.processEvents()
            QApplication.instance().thread().msleep(50)  # type: ignore[union-attr]
            deadline -= 1
        assert window.project is not None, "the demo folder did not open"
        count = len(window.project.images())
        window.close_project()
        window.close()
    print(
        f"smoke test: segstudio {segstudio.__version__} from {where.parent}; window opened {count} demo photos"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
