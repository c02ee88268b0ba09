"""The GUI thread while clicking: the longest event-loop gap per smart-tool engine (issue #21: "the GUI
thread never waits for a click model or an encoder"), measured as `bench.startup` measures start-up.

The real window (offscreen Qt) opens a copy of one VOC photo (labelme's 2011_000006, the chair); per
engine, the click tool is picked, the engine chosen in the tool bar and its per-image preparation
awaited; then a 5 ms precise QTimer ticks while the user clicks `--clicks` times inside the chair
(real mouse events on the canvas, `--pause` ms apart, Enter accepting every 4th click). Reported per
engine: `max_gap_ms` (the longest time the event loop did not run: a frozen window for that long),
`p50_gap_ms`, `p99_gap_ms`, `gaps_over_50ms`, the wall time, and the per-click latency from the press
to the mask shown (`click_ms_p50` / `click_ms_p90`; queued clicks wait for the one computing), the
engine's own time per request (`engine_ms_p50`) and the number of requests (`requests`). Each
engine is measured twice in the same run: `mode: "gui-thread"` runs the engine on the GUI thread as
the smart tools did before the click worker (`SmartTools.synchronous`, the "before"), `mode:
"worker"` is the shipped path. The reference is the same measurement with the brush (no engine).
`--sam vit_t|vit_b` adds the SAM engine with random weights of that architecture (its embedding on
the inference worker, awaited before clicking); `--learned` the click-model engine with a click model
of random weights (the shipped architecture: the same cost per click as a trained one).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.click_gaps --clicks 12
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.click_gaps --clicks 12 --sam vit_t --learned

Prints one JSON line per engine and a summary line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
TESTDATA = Path("/work/shared/testdata")
PHOTO = "2011_000006.jpg"
CHAIR = 9


def _chair(example: Path):
    import cv2
    import numpy as np
    from PIL import Image

    truth = np.array(
        Image.open(example / "expected_voc" / "SegmentationClass" / PHOTO.replace(".jpg", ".png"))
    )
    _n, comp, stats, _ = cv2.connectedComponentsWithStats((truth == CHAIR).view(np.uint8))
    return comp == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())


def _wait(app, condition, timeout: float) -> bool:
    from PySide6.QtTest import QTest

    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        QTest.qWait(20)
    return True


def _measure(
    window,
    app,
    tool_key,
    engine: str | None,
    points,
    pause_ms: int,
    ready_s: float = 90,
    synchronous: bool = False,
) -> dict:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest

    canvas = window.canvas
    smart = window.tools.smart
    smart.synchronous = synchronous
    canvas.setFocus()
    QTest.keyClick(canvas, tool_key)
    if engine is not None:
        combo = window.smart_options.engine_combo
        index = combo.findData(engine)
        if index < 0:
            offered = [combo.itemData(i) for i in range(combo.count())]
            return {"engine": engine, "error": f"not offered in the tool bar (offered: {offered})"}
        combo.setCurrentIndex(index)
        if not _wait(app, lambda: window.tools.smart.is_ready, ready_s):
            return {
                "engine": engine,
                "error": f"not ready after {ready_s} s (crf needs a model's prediction)",
            }
    moments: list[float] = []
    timer = QTimer(window)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: moments.append(time.perf_counter()))
    timer.start(5)
    QTest.qWait(50)
    smart.latencies.clear()
    smart.compute_seconds.clear()
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(points):
        QTest.mouseClick(
            canvas.viewport(),
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
            canvas.to_widget(x, y),
        )
        QTest.qWait(pause_ms)
        if i % 4 == 3:
            canvas.setFocus()
            QTest.keyClick(canvas, Qt.Key.Key_Return)
    QTest.qWait(pause_ms)
    _wait(app, lambda: not smart.busy, ready_s)  # every click shown
    wall = time.perf_counter() - t0
    timer.stop()
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    smart.synchronous = False
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(moments))
    clicks = sorted(1000 * s for s in smart.latencies)
    row = {
        "engine": engine or "brush (reference)",
        "mode": ("gui-thread" if synchronous else "worker") if engine else "-",
        "clicks": len(points),
        "max_gap_ms": round(gaps[-1], 1),
        "p50_gap_ms": round(statistics.median(gaps), 1),
        "p99_gap_ms": round(gaps[int(0.99 * (len(gaps) - 1))], 1),
        "gaps_over_50ms": sum(g > 50 for g in gaps),
        "wall_s": round(wall, 2),
    }
    if engine is not None and clicks:
        row["click_ms_p50"] = round(statistics.median(clicks), 1)
        row["click_ms_p90"] = round(clicks[int(0.9 * (len(clicks) - 1))], 1)
        row["engine_ms_p50"] = round(1000 * statistics.median(smart.compute_seconds), 1)
        row["requests"] = len(smart.compute_seconds)  # fewer than clicks: queued clicks were folded
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=TESTDATA / "labelme_voc_example")
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--pause", type=int, default=300, help="ms between clicks (a fast user)")
    parser.add_argument("--engines", default="superpixel,grabcut")
    parser.add_argument("--sam", choices=("vit_t", "vit_b"), help="also the SAM engine, random weights")
    parser.add_argument(
        "--learned", action="store_true", help="also the learned engine: a click model of random weights"
    )
    args = parser.parse_args(argv)
    if not (args.example / "data_annotated" / PHOTO).is_file():
        print(f"needs {args.example}/data_annotated/{PHOTO} (the shared test data)", file=sys.stderr)
        return 2

    import numpy as np
    import torch
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication([])
    chair = _chair(args.example)
    ys, xs = np.nonzero(chair)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(xs), args.clicks, replace=False)
    points = [(float(xs[i]), float(ys[i])) for i in pick]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        shutil.copy2(args.example / "data_annotated" / PHOTO, folder)
        window = MainWindow(AppSettings())
        window.resize(1400, 900)
        window.show()
        window.open_folder(folder)
        _wait(app, lambda: window.session is not None and window.session.document is not None, 120)
        window.tool_state.active_class = CHAIR
        rows.append(_measure(window, app, Qt.Key.Key_B, None, points, args.pause))
        print(json.dumps({"bench": "click_gaps", **rows[-1]}), flush=True)
        engines = [e for e in args.engines.split(",") if e]
        if args.sam:
            from segstudio.ml import sam_engine

            model = sam_engine.build_mobile_sam() if args.sam == "vit_t" else None
            if model is None:
                from segment_anything import sam_model_registry

                model = sam_model_registry["vit_b"](checkpoint=None)
            checkpoint = Path(tmp) / f"random_{args.sam}.pth"
            torch.save(model.state_dict(), checkpoint)
            window.tools.smart.load_sam(str(checkpoint))
            _wait(app, lambda: window.tools.smart.sam is not None, 300)
            engines.append("sam")
        if args.learned:
            from segstudio.ml.click_model import ClickNet, save_click_model

            window.tools.smart.set_click_model(save_click_model(Path(tmp) / "click_model.pt", ClickNet()))
            engines.append("learned")
        for engine in engines:
            ready_s = 900 if engine == "sam" else 90  # SAM: the first embedding, on the worker
            for synchronous in (True, False):  # before (engine on the GUI thread) / after (click worker)
                rows.append(
                    _measure(window, app, Qt.Key.Key_S, engine, points, args.pause, ready_s, synchronous)
                )
                print(json.dumps({"bench": "click_gaps", **rows[-1]}), flush=True)
        window.close()
    print(
        json.dumps(
            {
                "bench": "click_gaps_summary",
                "photo": PHOTO,
                "clicks": args.clicks,
                "pause_ms": args.pause,
                "sam": args.sam,
                "max_gap_ms": {f"{r['engine']} ({r.get('mode')})": r.get("max_gap_ms") for r in rows},
                "p99_gap_ms": {f"{r['engine']} ({r.get('mode')})": r.get("p99_gap_ms") for r in rows},
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
