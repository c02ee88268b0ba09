"""Screenshot of a smart-click segmentation in progress (README, interactive tools):
`xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python packaging/screenshot_click.py resources/demo/chelsea.jpg
resources/smart_click.png`.

Works on a copy of the photo in a temporary folder. Two positive clicks on the cat and one negative
click on the background, with the object still open (not yet accepted with Enter): the status bar
shows the prompt count and the latency of the last update.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from shots import settle as _pump
from shots import wait_for


def main(photo: str, out: str) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings
    from segstudio.gui.tools import Tool

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "photos"
        work.mkdir()
        shutil.copy2(photo, work)
        os.environ["SEGSTUDIO_SETTINGS_DIR"] = str(Path(tmp) / "settings")
        app = QApplication([])
        window = MainWindow(AppSettings())
        window.resize(1560, 940)
        window.show()
        window.open_folder(work)
        wait_for(
            app,
            lambda: (
                window.session is not None
                and window.session.document is not None
                and window.tools.smart.is_ready
            ),
            120,
            "the photo to open and the smart tools to get ready",
        )
        scheme = window.project.scheme
        window.palette.select_class(scheme.names.index("cat") if "cat" in scheme.names else 1)
        window.tool_state.tool = Tool.CLICK
        window.opacity_slider.setValue(55)
        window.canvas.fit()
        _pump(app, 0.5)
        h, w = window.session.document.shape
        clicks = [
            ((0.45, 0.55), Qt.MouseButton.LeftButton),
            ((0.30, 0.45), Qt.MouseButton.LeftButton),
            ((0.90, 0.12), Qt.MouseButton.RightButton),
        ]
        for (fx, fy), button in clicks:
            QTest.mouseClick(
                window.canvas.viewport(),
                button,
                Qt.KeyboardModifier.NoModifier,
                window.canvas.to_widget(w * fx, h * fy),
            )
            _pump(app, 0.3)
        _pump(app, 1.0)
        while window.tools.smart.busy:  # the clicks compute on the click worker
            _pump(app, 0.1)
        window.grab().save(out)
        print(
            f"saved {out}: {window.tools.smart.session.actions} prompts, "
            f"last update {1000 * window.tools.smart.latencies[-1]:.0f} ms"
        )
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "resources/demo/chelsea.jpg",
            sys.argv[2] if len(sys.argv) > 2 else "resources/smart_click.png",
        )
    )
