"""The click model: train it on frames of a folder, or time its clicks; prints JSON.

    python -m bench.click_model train --data DIR [--split train] [--limit N] --out FILE [--steps S]
        [--max-iters K] [--no-prev] [--seg-a A.pt --seg-b B.pt | --seg FILE] [--no-seg] [--no-proposal]
    python -m bench.click_model latency --click-model FILE [--data DIR --split val] [--frames N]
    python -m bench.click_model curve --result N=FILE ... --out PNG
        (FILE: `bench.annotate --json` output with a click:learned row for a model trained on N images)

`--seg-a/--seg-b`: cross-fitting: the segmentation evidence of train frame i (in split.txt order) is
predicted by the model that did NOT train on it (`bench.seg_model --half a|b`: a trained on the even
positions, b on the odd ones); the probabilities are cached next to the model (`*.probs.npz`).
`--seg FILE`: one model predicts every frame (its own training frames: over-confident priors).
`--data` is a folder with images/, masks/ and split.txt (`<stem> train|val`), like
../shared/testdata/camvid_more. `latency` runs the `learned` engine through a click session (the
GUI's path) with the robot's object protocol on each frame's largest objects (20 clicks max) and
reports per-click milliseconds (median, p90) on one CPU thread; the superpixel engine's clicks on
the same frames are the reference measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _stems(data: Path, split: str | None) -> list[str]:
    lines = [line.split() for line in (data / "split.txt").read_text().splitlines() if line.strip()]
    return [stem for stem, s in lines if split is None or s == split]


def _pairs(data: Path, split: str | None, limit: int | None, stride: int = 1) -> list[tuple[Path, Path]]:
    stems = _stems(data, split)[:: max(1, stride)]
    stems = stems[:limit] if limit else stems
    return [(data / "images" / f"{s}.png", data / "masks" / f"{s}.png") for s in stems]


def _evidence(args: argparse.Namespace, stems: list[str]):
    """`predict(i, image)` for ObjectBank.from_files: cross-fitted (or one model's) probabilities,
    cached as uint8 per (model, stem) in a .npz next to the first model."""
    if args.no_seg or (args.seg is None and args.seg_a is None):
        return None
    from segstudio.ml.click_evidence import segmentation_probabilities

    all_train = _stems(args.data, "train")
    models = {}
    for stem in stems:
        if args.seg is not None:
            models[stem] = args.seg
        else:  # cross-fitting: half a = even positions of the train list, predicted by model b
            models[stem] = args.seg_b if all_train.index(stem) % 2 == 0 else args.seg_a
    cache_path = Path(str(args.seg or args.seg_a) + ".probs.npz")
    cache = dict(np.load(cache_path)) if cache_path.is_file() else {}
    changed = False

    def predict(i: int, image: np.ndarray) -> np.ndarray:
        nonlocal changed
        stem = stems[i]
        key = f"{Path(models[stem]).parent.name}/{stem}"
        if key not in cache:
            probs = segmentation_probabilities(models[stem], image)
            cache[key] = np.rint(255 * np.clip(probs, 0, 1)).astype(np.uint8)
            changed = True
        if i == len(stems) - 1 and changed:
            np.savez(cache_path, **cache)
        return cache[key]

    return predict


def train(args: argparse.Namespace) -> dict:
    from segstudio.ml.click_model import OBLONG_CROPS
    from segstudio.ml.click_model_train import ClickTrainConfig, ObjectBank, train_click_model

    config = ClickTrainConfig(
        steps=args.steps,
        time_budget_s=args.time,
        max_iters=args.max_iters,
        use_prev=not args.no_prev,
        seed=args.seed,
        threads=args.threads,
        prior=args.prior,
        proposal=not args.no_proposal,
        colour_fallback=not args.no_colour_fallback,
        per_click=not args.first_click_only,
        error_first=args.error_first,
        misnamed=not args.no_misnamed,
        max_aspect=OBLONG_CROPS if args.max_aspect is None else args.max_aspect,
    )
    if args.focus is not None:
        config.focus = args.focus
    pairs = _pairs(args.data, args.split, args.limit)
    stems = [image.stem for image, _ in pairs]
    bank = ObjectBank.from_files(pairs, config.min_object, config.max_side, _evidence(args, stems))
    model = None
    if args.init is not None:  # continue training a saved model (a longer run in two parts)
        from segstudio.ml.click_model import load_click_model

        model, _ = load_click_model(args.init)
    _, result = train_click_model(
        bank,
        args.out,
        config,
        on_step=lambda s, loss: print(f"step {s} loss {loss:.3f}", file=sys.stderr),
        model=model,
    )
    losses = result.losses
    return {
        "out": str(result.path),
        "images": result.images,
        "objects": result.objects,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "loss_first50": float(np.mean(losses[:50])),
        "loss_last50": float(np.mean(losses[-50:])),
        "max_iters": config.max_iters,
        "use_prev": config.use_prev,
        "seg_evidence": bank.has_evidence,
        "proposal": config.proposal and bank.has_evidence,
        "colour_fallback": config.colour_fallback,
        "per_click": config.per_click,
        "misnamed": config.misnamed and bank.has_evidence,
        "max_aspect": config.max_aspect,
        "focus": config.focus,
        "evidence": "none" if not bank.has_evidence else ("one model" if args.seg else "cross-fitted"),
    }


def latency(args: argparse.Namespace) -> dict:
    import torch
    from PIL import Image

    from bench.annotate import objects
    from segstudio.core.images import load_image
    from segstudio.core.interactive import create_engine
    from segstudio.core.interactive.robot import object_clicks
    from segstudio.ml.click_engine import use_click_model

    torch.set_num_threads(1)
    use_click_model(args.click_model)
    out: dict = {"frames": 0, "threads": 1}
    times: dict[str, list[float]] = {"learned": [], "superpixel": []}
    prepare: dict[str, list[float]] = {"learned": [], "superpixel": []}
    for image_path, mask_path in _pairs(args.data, args.split, args.frames, args.stride):
        image = load_image(image_path)[..., :3]
        truth = np.array(Image.open(mask_path))
        out["frames"] += 1
        out["frame_shape"] = list(image.shape[:2])
        for name in times:
            engine = create_engine(name)
            t0 = time.perf_counter()
            engine.prepare(image)
            prepare[name].append(time.perf_counter() - t0)
            for cls, obj in objects(truth, 0.005, 3):
                object_clicks(engine, obj, cls, latencies=times[name])
    for name, values in times.items():
        ms = 1000 * np.asarray(values)
        out[name] = {
            "clicks": len(values),
            "ms_median": round(float(np.median(ms)), 1),
            "ms_p90": round(float(np.percentile(ms, 90)), 1),
            "prepare_s_median": round(float(np.median(prepare[name])), 3),
        }
    return out


def curve(args: argparse.Namespace) -> dict:
    """The learning curve: actions to 90 % and 95 %, NoC@85 and the pixel accuracy after the last action
    against training images, drawn with pyqtgraph (the project's plotting library, offscreen; imported
    here only) into a PNG for the docs."""
    points = []
    settings = set()
    for item in args.result:
        n, path = item.split("=", 1)
        result = json.loads(Path(path).read_text())
        row = next(r for r in result["tools"] if r["tool"] == "click:learned")
        meta = result.get("meta", {})
        settings.add((meta.get("start", "empty"), int(meta.get("max_actions", 60))))
        points.append(
            (int(n), row["mean95"], row["noc85"], row["final_accuracy"], row["images"], row["mean90"])
        )
    if len(settings) != 1:
        raise SystemExit(
            f"the results were measured with different start masks or action caps: {sorted(settings)}"
        )
    start, cap = settings.pop()
    points.sort()
    _plot_curve(points, start, cap, args.out)
    return {
        "points": [
            dict(zip(("images", "mean95", "noc85", "final_accuracy", "frames", "mean90"), p, strict=True))
            for p in points
        ]
    }


def _plot_curve(points: list[tuple], start: str, cap: int, out: Path) -> None:
    """Two panels (effort; quality) rather than twin axes: each keeps its own honest scale."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # pyqtgraph draws through Qt
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    start_text = {"empty": "from an empty mask", "model": "from the model's prediction"}.get(start, start)
    layout = pg.GraphicsLayoutWidget()
    layout.resize(820, 330)
    layout.addLabel(f"learned engine, {points[0][4]} CamVid val frames, {start_text}", colspan=2)
    layout.nextRow()
    xs = [float(p[0]) for p in points]
    ticks = [[(x, str(int(x))) for x in xs]]
    effort = layout.addPlot(title="actions and clicks (lower is better)")
    effort.addLegend(offset=(-10, -80), labelTextSize="8pt")  # right, between the lines
    for column, name, colour, style in (
        (5, f"actions to 90 % (mean; {cap} = never)", "#1f77b4", None),
        (1, f"actions to 95 % (mean; {cap} = never)", "#d62728", pg.QtCore.Qt.PenStyle.DashLine),
        (2, "NoC@85 (mean; 20 = never)", "#ff7f0e", pg.QtCore.Qt.PenStyle.DotLine),
    ):
        pen = pg.mkPen(colour, width=2, **({"style": style} if style else {}))
        effort.plot(xs, [p[column] for p in points], pen=pen, symbol="o", symbolBrush=colour, name=name)
    effort.setYRange(0, cap * 1.04, padding=0)
    quality = layout.addPlot(title=f"pixel accuracy after {cap} actions (%)")
    quality.plot(
        xs, [100 * p[3] for p in points], pen=pg.mkPen("#2ca02c", width=2), symbol="t", symbolBrush="#2ca02c"
    )
    quality.setYRange(0, 100, padding=0)
    for plot in (effort, quality):
        plot.setLabel("bottom", "done images the click model was trained on")
        plot.getAxis("bottom").setTicks(ticks)
        plot.setXRange(min(xs) - 5, max(xs) + 5, padding=0)
        plot.showGrid(y=True, alpha=0.25)
    layout.show()  # lays the plots out at the widget's size (offscreen: nothing appears)
    app.processEvents()
    pg.exporters.ImageExporter(layout.scene()).export(str(out))
    layout.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.click_model", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--split", default="train")
    t.add_argument("--limit", type=int, default=None)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=400)
    t.add_argument("--max-iters", type=int, default=3)
    t.add_argument("--no-prev", action="store_true")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--prior", type=float, default=1.0, help="initial previous-mask weight in the logits")
    t.add_argument("--init", type=Path, default=None, help="continue from this click model file")
    t.add_argument("--time", type=float, default=None, help="stop after this many seconds")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seg-a", type=Path, default=None, help="cross-fitting: model trained on train half a")
    t.add_argument("--seg-b", type=Path, default=None, help="cross-fitting: model trained on train half b")
    t.add_argument("--seg", type=Path, default=None, help="one segmentation model predicts every frame")
    t.add_argument("--no-seg", action="store_true", help="ablation: no segmentation evidence")
    t.add_argument("--no-proposal", action="store_true", help="ablation: no first-click proposal")
    t.add_argument(
        "--no-colour-fallback",
        action="store_true",
        help="ablation: no colour region as the first click's proposal where the model has none",
    )
    t.add_argument(
        "--first-click-only",
        action="store_true",
        help="ablation: only the first click starts from a proposal, not later clicks outside the mask",
    )
    t.add_argument("--error-first", type=float, default=0.3)
    t.add_argument(
        "--no-misnamed",
        action="store_true",
        help="ablation: where the model disagrees with a click, start from the colour region, not its segment",
    )
    t.add_argument(
        "--max-aspect",
        type=float,
        default=None,
        help="the zoom-in crop up to this long : short (1: square; default: the trainer's, OBLONG_CROPS)",
    )
    t.add_argument(
        "--focus",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="corrective clicks near the boundary in a local window (FocalClick; default: the trainer's)",
    )
    lat = sub.add_parser("latency")
    lat.add_argument("--click-model", type=Path, required=True)
    lat.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared/testdata/camvid_more",
    )
    lat.add_argument("--split", default="val")
    lat.add_argument("--frames", type=int, default=5)
    lat.add_argument("--stride", type=int, default=10)
    c = sub.add_parser("curve")
    c.add_argument("--result", action="append", required=True, metavar="N=FILE")
    c.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    result = {"train": train, "latency": latency, "curve": curve}[args.command](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
