"""GUI latency benchmark: brush dab, image switch, window-ready on a 10,000-image folder.

Run: `.venv/bin/python -m bench.gui [--dabs 200] [--switches 20] [--images 10000] [--runs 3]`
(offscreen by default; set QT_QPA_PLATFORM=xcb under a real display for on-screen numbers).
Prints one JSON line per measurement with the median and a reference measured in the same run:

- brush_dab_ms: mouse-move event with the button down -> document painted -> end of the next
  paint of the canvas viewport (only the changed region is invalidated), on a 2048x1024 image.
  Reference: the same dab followed by a full-overlay re-render (what redrawing the whole label
  layer on every dab costs); also reported: a forced repaint of the whole viewport. Goal <= 16 ms.
- image_switch_ms: `open_image` of an image already in the decoded-image cache -> repainted.
  Reference: the same switch with the cache cleared (decode from disk). Goal <= 150 ms.
- window_ready_ms: process start -> main window painted, in a fresh interpreter, with a
  10,000-image folder being opened in the background; plus listed_ms (all rows in the browser)
  for a first open (hashing every file) and a reopen. Reference: a bare QLabel window.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def _make_images(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for i in range(count):
        img = np.roll(base, i * 7, axis=1)
        Image.fromarray(img).save(folder / f"img_{i:05d}.jpg", quality=85)


def _window(folder: Path):
    from PySide6.QtWidgets import QApplication

    import segstudio.gui.main_window as main_window
    from segstudio.gui.canvas import CanvasView
    from segstudio.gui.settings import AppSettings

    class TimedCanvas(CanvasView):
        """Records when each paint of the viewport has finished."""

        painted_at = 0.0
        paints = 0

        def paintEvent(self, ev) -> None:
            super().paintEvent(ev)
            TimedCanvas.painted_at = time.perf_counter()
            TimedCanvas.paints += 1

    main_window.CanvasView = TimedCanvas  # the window builds its canvas from this name
    app = QApplication.instance() or QApplication([])
    window = main_window.MainWindow(AppSettings())
    window.resize(1400, 900)
    window.show()
    window.open_folder(folder)
    deadline = time.monotonic() + 120
    while window.session is None or window.session.document is None:
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() > deadline:
            raise RuntimeError("the project did not open within 120 s")
    return app, window


def _dispose(app, window) -> None:
    """Close and delete the window while Qt is fully alive (not during interpreter shutdown)."""
    window.close()
    window.deleteLater()
    for _ in range(3):
        app.processEvents()


def bench_dab(dabs: int) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    with tempfile.TemporaryDirectory() as tmp:
        _make_images(Path(tmp), 2, (2048, 1024))
        app, window = _window(Path(tmp))
        canvas = window.canvas
        timed = type(canvas)
        viewport = canvas.viewport()
        window.tool_state.size = 25
        window.palette.select_position(2)
        doc = window.session.document
        for _ in range(5):
            app.processEvents()

        def run(mode: str) -> list[float]:
            """mode: "region" (the app's path), "full_rerender" (reference), "forced_full_repaint"."""
            times = []
            start = canvas.to_widget(200, 500)
            QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
            app.processEvents()
            for i in range(dabs):
                x = 200 + (i * 8) % 1600
                y = 500 + 200 * ((i * 8) // 1600 % 2)
                pos = canvas.to_widget(x, y)
                paints = timed.paints
                t0 = time.perf_counter()
                QTest.mouseMove(viewport, pos)
                if mode == "full_rerender":
                    canvas.overlay.item.rebuild()
                if mode == "forced_full_repaint":
                    viewport.repaint()
                deadline = t0 + 5
                while timed.paints == paints and time.perf_counter() < deadline:
                    app.processEvents()
                times.append((timed.painted_at - t0) * 1000)
            QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
            doc.undo()
            app.processEvents()
            return times

        run("region")  # warm-up
        ours = run("region")
        ref = run("full_rerender")
        full = run("forced_full_repaint")
        _emit(
            bench="brush_dab_ms",
            image="2048x1024",
            dabs=dabs,
            median=round(statistics.median(ours), 3),
            p90=round(sorted(ours)[int(0.9 * len(ours))], 3),
            reference="same dab + full overlay re-render and repaint",
            reference_median=round(statistics.median(ref), 3),
            full_viewport_repaint_median=round(statistics.median(full), 3),
            goal=16,
        )
        _dispose(app, window)


def bench_switch(switches: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _make_images(Path(tmp), 2, (2048, 1024))
        app, window = _window(Path(tmp))
        session = window.session
        names = ["img_00000.jpg", "img_00001.jpg"]

        def run(cached: bool) -> list[float]:
            times = []
            for i in range(switches):
                if not cached:
                    session.cache._images.clear()
                else:
                    session.cache.get(window.project.get(names[(i + 1) % 2]))  # make sure it is cached
                t0 = time.perf_counter()
                window.open_image(names[(i + 1) % 2])
                window.canvas.viewport().repaint()
                times.append((time.perf_counter() - t0) * 1000)
            return times

        run(True)  # warm-up
        ours = run(True)
        ref = run(False)
        _emit(
            bench="image_switch_ms",
            image="2048x1024",
            switches=switches,
            median=round(statistics.median(ours), 2),
            reference="same switch, decoded-image cache cleared",
            reference_median=round(statistics.median(ref), 2),
            goal=150,
        )
        _dispose(app, window)


CHILD_WINDOW = """
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtWidgets import QApplication
app = QApplication([])
kind, folder = sys.argv[1], sys.argv[2]
if kind == "label":
    from PySide6.QtWidgets import QLabel
    w = QLabel("reference window"); w.resize(1400, 900); w.show(); w.repaint()
    print("READY", time.time(), flush=True)
    sys.exit(0)
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings
w = MainWindow(AppSettings()); w.resize(1400, 900); w.show()
w.open_folder(folder)
w.repaint()
print("READY", time.time(), "torch" in sys.modules, flush=True)
while w.browser.model.rowCount() < int(sys.argv[3]):
    app.processEvents(); time.sleep(0.005)
print("LISTED", time.time(), flush=True)
w.close()
"""


def _child(kind: str, folder: Path, count: int) -> dict[str, float]:
    t0 = time.time()
    env = dict(os.environ, SEGSTUDIO_SETTINGS_DIR=str(folder.parent / "settings"))
    out = subprocess.run(
        [sys.executable, "-c", CHILD_WINDOW, kind, str(folder), str(count)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=True,
    ).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("READY", "LISTED"):
            result[parts[0].lower()] = (float(parts[1]) - t0) * 1000
            if len(parts) > 2:
                result["torch_imported"] = parts[2] == "True"
    return result


def bench_window(images: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        _make_images(folder, images, (64, 48))
        first = _child("window", folder, images)  # hashes every file in the background
        ours = [_child("window", folder, images) for _ in range(runs)]
        ref = [_child("label", folder, images)["ready"] for _ in range(runs)]
        _emit(
            bench="window_ready_ms",
            images=images,
            median=round(statistics.median(r["ready"] for r in ours), 1),
            reference="bare QLabel window, fresh process",
            reference_median=round(statistics.median(ref), 1),
            torch_imported=any(r.get("torch_imported") for r in ours),
        )
        _emit(
            bench="folder_listed_ms",
            images=images,
            first_open=round(first.get("listed", float("nan")), 1),
            reopen_median=round(statistics.median(r["listed"] for r in ours), 1),
            note="window is usable meanwhile; first open hashes every file once",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dabs", type=int, default=200)
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["dab", "switch", "window"])
    args = parser.parse_args(argv)
    os.environ.setdefault("SEGSTUDIO_SETTINGS_DIR", tempfile.mkdtemp(prefix="segstudio-bench-settings-"))
    if args.only in (None, "dab"):
        bench_dab(args.dabs)
    if args.only in (None, "switch"):
        bench_switch(args.switches)
    if args.only in (None, "window"):
        bench_window(args.images, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
