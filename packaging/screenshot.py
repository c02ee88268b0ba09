"""Take the README screenshot of the real window: `xvfb-run -s "-screen 0 1600x1000x24" \
.venv/bin/python packaging/screenshot.py resources/demo resources/screenshot.png`.

Works on a copy of the folder (the demo's own project state is never touched). The overlay is
a GrabCut segmentation of the first image's central object, so the picture shows a realistic
mask rather than random strokes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _grabcut_mask(image: np.ndarray, fg_class: int, bg_class: int) -> np.ndarray:
    h, w = image.shape[:2]
    rect = (int(w * 0.12), int(h * 0.08), int(w * 0.76), int(h * 0.86))
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), mask, rect, bgd, fgd, 4, cv2.GC_INIT_WITH_RECT)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return np.where(fg, fg_class, bg_class).astype(np.uint8)


def main(folder: str, out: str) -> int:
    from PySide6.QtWidgets import QApplication

    from segstudio.core.project import Status
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "demo"
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns(".segstudio"))
        import os

        os.environ["SEGSTUDIO_SETTINGS_DIR"] = str(Path(tmp) / "settings")
        app = QApplication([])
        window = MainWindow(AppSettings())
        window.resize(1560, 940)
        window.show()
        window.open_folder(work)
        deadline = time.monotonic() + 60
        while window.session is None or window.session.document is None:
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > deadline:
                print("the demo folder did not open", file=sys.stderr)
                return 1
        records = window.project.images()
        pick = next((r for r in records if "cat" in r.rel_path or "chelsea" in r.rel_path), records[0])
        # Two other images already done, so the browser shows the status badges.
        for rec in [r for r in records if r.rel_path != pick.rel_path and not r.error][:2]:
            window.open_image(rec.rel_path)
            window.mark(Status.DONE)
        window.open_image(pick.rel_path)
        scheme = window.project.scheme
        fg = scheme.index_of("cat") if "cat" in [n.lower() for n in scheme.names] else 1
        doc = window.session.document
        doc.set_labels(_grabcut_mask(window.session.image, fg, 0))
        window.session.stroke_finished()
        window.palette.select_class(fg)
        window.tool_state.size = 41
        window.opacity_slider.setValue(55)
        window.canvas.fit()
        centre = window.canvas.to_widget(doc.shape[1] * 0.62, doc.shape[0] * 0.42)
        from PySide6.QtCore import QPointF, Qt
        from PySide6.QtGui import QMouseEvent

        move = QMouseEvent(QMouseEvent.Type.MouseMove, QPointF(centre), QPointF(window.canvas.mapToGlobal(centre)),
                           Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(window.canvas.viewport(), move)
        for _ in range(100):  # thumbnails and counts arrive from the background threads
            app.processEvents()
            time.sleep(0.03)
        window.grab().save(out)
        print(f"saved {out}")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "resources/demo",
                  sys.argv[2] if len(sys.argv) > 2 else "resources/screenshot.png"))
