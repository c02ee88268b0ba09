"""Smart click and scribble latency *in the window*: mouse event -> region computed -> canvas repainted.

Run: `.venv/bin/python -m bench.gui_latency [--frames 6] [--objects 3] [--engines superpixel,grabcut,crf]
[--scale 1]` (offscreen by default; QT_QPA_PLATFORM=xcb under a real display for on-screen numbers).

Why: the README's click latencies came from `bench/annotate.py`, which times the engine call alone;
a user waits for the whole path (issue #19 measured grabcut at 0.4-1.2 s in the window where the
bench said 118-154 ms). This opens the CamVid sample frames (real photos, `--scale 2` upsamples them to
CamVid's native 960x720) in the real main window with a pre-annotation (`simulated_model`, its
confidence and stored probabilities, so the `crf` engine works), picks each engine, and for the
`--objects` true objects the pre-annotation gets most wrong (the "human" robot's spots) clicks with
`QTest.mouseClick` on the canvas viewport, then scribbles along the object; each time from the event
to the end of the next paint of the canvas viewport. Reference, measured in the same run: the
engine's own time for the same prompt (`ClickSession.last_seconds`, what bench/annotate.py reports).
Prints one JSON line per engine and prompt kind: median / p90 in ms, window and engine-only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_sample"


def _p90(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(0.9 * len(values)))]


def _frames(root: Path, count: int, scale: int, folder: Path) -> list[tuple[str, object]]:
    """Copy `count` spread-out frames (upsampled by `scale`) into `folder`; (name, truth) per frame."""
    import cv2
    import numpy as np
    from PIL import Image

    stems = sorted(p.stem for p in (root / "images").iterdir() if p.suffix == ".png")
    stems = stems[:: max(1, len(stems) // count)][:count]
    out = []
    for stem in stems:
        image = np.array(Image.open(root / "images" / f"{stem}.png").convert("RGB"))
        truth = np.array(Image.open(root / "masks" / f"{stem}.png"))
        if scale != 1:
            h, w = truth.shape
            image = cv2.resize(image, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
            truth = cv2.resize(truth, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        Image.fromarray(image).save(folder / f"{stem}.png")
        out.append((f"{stem}.png", np.where(truth < 11, truth, 255).astype(np.uint8)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gui_latency", description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--objects", type=int, default=3)
    p.add_argument("--engines", default="superpixel,grabcut,crf")
    p.add_argument("--scale", type=int, default=1, help="upsample the 480x360 sample frames (2: 960x720)")
    p.add_argument("--data", type=Path, default=CAMVID, help="camvid_sample folder (images/, masks/)")
    args = p.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"error: no CamVid sample at {args.data} (pass --data)", file=sys.stderr)
        return 2

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from bench.gui import _dispose, _window
    from segstudio.core.interactive.robot import (
        _largest_part,
        interior_point,
        scribble_through,
        wrong_objects,
    )
    from segstudio.core.interactive.simulated_model import simulated_prediction
    from segstudio.core.probabilities import save_probabilities

    engines = args.engines.split(",")
    window_ms: dict[tuple[str, str], list[float]] = {
        (e, k): [] for e in engines for k in ("click", "scribble")
    }
    engine_ms: dict[tuple[str, str], list[float]] = {key: [] for key in window_ms}
    no = Qt.KeyboardModifier.NoModifier
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        frames = _frames(args.data, args.frames, args.scale, folder)
        app, window = _window(folder)
        canvas, smart = window.canvas, window.tools.smart
        viewport, timed = canvas.viewport(), type(canvas)

        def settle(until, limit: float = 120.0) -> None:
            deadline = time.monotonic() + limit
            while not until():
                app.processEvents()
                time.sleep(0.002)
                if time.monotonic() > deadline:
                    raise RuntimeError("the window did not get there within the time limit")

        def timed_event(send) -> float:
            """From the event to the first canvas paint after its mask was shown (the engine works on
            the click worker: `smart.latencies` gains the press -> shown time when it arrives)."""
            shown = len(smart.latencies)
            t0 = time.perf_counter()
            send()
            settle(lambda: not smart.busy and len(smart.latencies) > shown, 30.0)
            at = t0 + smart.latencies[-1]
            settle(lambda: timed.painted_at >= at, 10.0)
            return (timed.painted_at - t0) * 1000

        def key(k: Qt.Key) -> None:
            canvas.setFocus()
            QTest.keyClick(canvas, k, no)

        for name, truth in frames:
            window.open_image(name)
            settle(lambda n=name: window.session is not None and window.session.record.rel_path == n)
            doc = window.session.document
            predicted = simulated_prediction(truth, 11)
            save_probabilities(window.project, window.session.record.id, predicted.probabilities, doc.shape)
            doc.set_prediction(predicted.labels, predicted.confidence)
            doc.reset(predicted.labels)
            spots = []
            for cls, obj in wrong_objects(predicted.labels, truth, int(0.002 * truth.size), args.objects):
                part = _largest_part(obj & (predicted.labels != cls))
                spots.append((cls, interior_point(part)[:2], scribble_through(part)))
            for engine in engines:
                combo = window.smart_options.engine_combo
                combo.setCurrentIndex(combo.findData(engine))
                smart.engine_changed()
                settle(lambda e=engine: e in smart.engines)
                for cls, (x, y), stroke in spots:
                    window.tool_state.active_class = cls
                    key(Qt.Key.Key_S)  # the click tool
                    ms = timed_event(
                        lambda x=x, y=y: QTest.mouseClick(
                            viewport, Qt.MouseButton.LeftButton, no, canvas.to_widget(x, y)
                        )
                    )
                    window_ms[(engine, "click")].append(ms)
                    engine_ms[(engine, "click")].append(1000 * smart.session.last_seconds)
                    key(Qt.Key.Key_Escape)
                    key(Qt.Key.Key_L)  # the scribble tool
                    points = [canvas.to_widget(px, py) for px, py in stroke]
                    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, no, points[0])
                    for pt in points[1:]:
                        QTest.mouseMove(viewport, pt)
                    ms = timed_event(
                        lambda pt=points[-1]: QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, no, pt)
                    )
                    window_ms[(engine, "scribble")].append(ms)
                    engine_ms[(engine, "scribble")].append(1000 * smart.session.last_seconds)
                    key(Qt.Key.Key_Escape)
        h, w = frames[0][1].shape
        for (engine, kind), values in window_ms.items():
            if not values:
                continue
            ref = engine_ms[(engine, kind)]
            print(
                json.dumps(
                    {
                        "bench": "smart_prompt_in_window_ms",
                        "engine": engine,
                        "prompt": kind,
                        "image": f"{w}x{h}",
                        "prompts": len(values),
                        "median": round(statistics.median(values), 1),
                        "p90": round(_p90(values), 1),
                        "reference": "engine only (ClickSession.last_seconds), same prompts",
                        "reference_median": round(statistics.median(ref), 1),
                        "reference_p90": round(_p90(ref), 1),
                    }
                ),
                flush=True,
            )
        _dispose(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
