"""Simulated annotator: actions per image to 90 / 95 % pixel accuracy, per tool, on labelled photos.

    python -m bench.annotate --images DIR --masks DIR --scheme scheme.json
        [--start empty|simulated|model --weights FILE] [--list STEMS.txt] [--human]
        [--tools LIST] [--target 0.95] [--max-actions 60] [--limit N] [--stride K] [--json]

The robot (segstudio.core.interactive.robot) drives the same tool functions as the GUI: after each
action it finds the largest error region (per true class, void ignored) and acts at its interior
point farthest from the boundary - a positive click of the true class, or a negative click where
the open click-object is wrong; the brush robot dabs the largest disc that fits (<= 50 px). Tools:
  polygon            manual baseline: labelme-style polygons, one click per Douglas-Peucker (1.5 px) vertex
  ideal              one action fixes one whole error region exactly (the lower bound)
  brush, spbrush     disc brush / superpixel brush dabs
  wand, box          magic wand click (default tolerance) / GrabCut box around the error region
  click:ENGINE       smart click with superpixel, grabcut or crf (crf needs --start model), or learned
                     (the project's click model: --click-model FILE, see docs/click-model.md)
Per tool: mean/median actions to 90 % and 95 % (an image that never gets there counts as
--max-actions, so those figures are lower bounds when "never" > 0), the fraction never reaching,
per-object NoC@85/NoC@90 (objects = connected regions of one class >= --min-object of the image,
the --objects largest per image, 20 clicks max, counted as 20 when missed; and their mean IoU after
the first click, `iou_first_click` in the JSON), per-action latency
median/p90 and the per-image precomputation time; collateral damage: the share of all changed
pixels that became wrong and the worst single action (most pixels made wrong, as % of the image).
--start simulated: a pre-annotation without a network (`core.interactive.simulated_model`: the truth
degraded as a model errs, with class probabilities), so the click tools are measured after
pre-annotation as users meet them. --human (click tools): the "human" robot
(`robot.human_actions`): per image, one click and one scribble on each of the --objects true objects
the start mask gets most wrong, each from the start mask; reports changed area / the object's true
area (median, p95, max), the object's IoU gain and the accuracy change of the rest of the image.
Prints a Markdown table, or JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segstudio.core.errors import SegStudioError
from segstudio.core.images import is_image_file, load_image
from segstudio.core.interactive import compute_superpixels, create_engine
from segstudio.core.interactive.regions import pixel_accuracy
from segstudio.core.interactive.robot import (
    ObjectAction,
    human_actions,
    object_clicks,
    polygon_trace,
    run_image,
)
from segstudio.core.interactive.simulated_model import simulated_prediction
from segstudio.core.schemes import get_scheme

VOID = 255
DEFAULT_TOOLS = "polygon,ideal,brush,spbrush,wand,box,click:superpixel,click:grabcut"
NOC_MAX = 20


@dataclass
class ToolStats:
    to90: list[int] = field(default_factory=list)
    to95: list[int] = field(default_factory=list)
    never90: int = 0
    never95: int = 0
    final: list[float] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    prepare: list[float] = field(default_factory=list)
    noc85: list[int] = field(default_factory=list)
    noc90: list[int] = field(default_factory=list)
    iou1: list[float] = field(default_factory=list)  # NoC objects: IoU after the first click
    changed: int = 0  # pixels changed by all actions
    spoiled: int = 0  # of those, pixels that became wrong
    worst: float = 0.0  # most pixels one action made wrong, as a fraction of its image
    human: list[ObjectAction] = field(default_factory=list)


def pairs(images: Path, masks: Path, limit: int | None, stride: int = 1) -> list[tuple[Path, Path]]:
    """(image, mask) with the same stem; a clear error when none match."""
    by_stem = {p.stem: p for p in masks.iterdir() if p.suffix.lower() == ".png"}
    found = [
        (p, by_stem[p.stem]) for p in sorted(images.iterdir()) if is_image_file(p.name) and p.stem in by_stem
    ]
    if not found:
        raise SegStudioError(f"no image in {images} has a mask with the same stem in {masks}")
    found = found[:: max(1, stride)]
    return found[:limit] if limit else found


def objects(truth: np.ndarray, min_fraction: float, most: int) -> list[tuple[int, np.ndarray]]:
    """The `most` largest connected regions of one class covering >= `min_fraction` of the image."""
    found = []
    for c in np.unique(truth):
        if c == VOID:
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats((truth == c).view(np.uint8), connectivity=8)
        for k in range(1, count):
            if stats[k, cv2.CC_STAT_AREA] >= min_fraction * truth.size:
                found.append((int(stats[k, cv2.CC_STAT_AREA]), int(c), comp == k))
    found.sort(key=lambda f: -f[0])
    return [(c, m) for _, c, m in found[:most]]


def noc(ious: list[float], threshold: float) -> int:
    return next((i + 1 for i, v in enumerate(ious) if v >= threshold), NOC_MAX)


class ModelStart:
    """Predictions (labels + probabilities) of a real checkpoint: the product's correction workflow."""

    def __init__(self, weights: str, scheme_name: str) -> None:
        import segstudio.ml.interactive_crf  # noqa: F401  (registers the crf engine)
        from segstudio.ml.predict import Predictor
        from segstudio.ml.spec import ModelSpec
        from segstudio.ml.weights import load_model

        loaded = load_model(ModelSpec(weights="file", path=weights), get_scheme(scheme_name), "cpu")
        self.predictor = Predictor.from_loaded(loaded, return_probabilities=True, precision="float32")

    def __call__(self, image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.predictor.predict(image)
        return result.labels, result.probabilities


class SimulatedStart:
    """A pre-annotation without a network: the truth degraded as a model errs (`simulated_model`)."""

    def __init__(self, num_classes: int) -> None:
        import segstudio.ml.interactive_crf  # noqa: F401  (registers the crf engine)

        self.num_classes = num_classes

    def __call__(self, image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        predicted = simulated_prediction(truth, self.num_classes)
        return predicted.labels, predicted.probabilities


def run_tool(
    tool: str,
    image: np.ndarray,
    truth: np.ndarray,
    start: np.ndarray,
    probs: np.ndarray | None,
    stats: ToolStats,
    args: argparse.Namespace,
    objs: list[tuple[int, np.ndarray]],
    cache: dict,
    confidence: np.ndarray | None = None,
) -> None:
    if tool == "polygon":
        trace = polygon_trace(truth, start)
    else:
        engine = superpixels = None
        t0 = time.perf_counter()
        if tool.startswith("click:"):
            engine = create_engine(tool.split(":", 1)[1])
            engine.prepare(image, probs)
        elif tool == "spbrush":
            superpixels = cache.get("sp") or compute_superpixels(image)
            cache["sp"] = superpixels
        if engine is not None or tool == "spbrush":
            stats.prepare.append(time.perf_counter() - t0)

        def add_human_actions() -> None:
            stats.human += human_actions(
                engine,
                truth,
                start,
                confidence=confidence,
                min_area=int(args.min_object * truth.size),
                most=args.objects,
            )

        if args.human_only:
            if engine is not None:
                add_human_actions()
            return
        trace = run_image(
            tool.split(":")[0],
            image,
            truth,
            start,
            engine=engine,
            superpixels=superpixels,
            target=args.target,
            max_actions=args.max_actions,
            confidence=confidence,
        )
        stats.latency += trace.latency
        stats.changed += sum(trace.changed)
        stats.spoiled += sum(trace.spoiled)
        stats.worst = max([stats.worst, *(s / truth.size for s in trace.spoiled)])
        if engine is not None and args.human:
            add_human_actions()
        if engine is not None:
            for cls, mask in objs:
                ious = object_clicks(engine, mask, cls, NOC_MAX)
                stats.noc85.append(noc(ious, 0.85))
                stats.iou1.append(ious[0] if ious else 1.0)
                stats.noc90.append(noc(ious, 0.90))
    for target, reached, never in ((0.90, stats.to90, "never90"), (0.95, stats.to95, "never95")):
        n = trace.actions_to(target)
        if n is None:
            setattr(stats, never, getattr(stats, never) + 1)
            n = args.max_actions
        reached.append(n)
    stats.final.append(trace.accuracy[-1])
    stats.start.append(trace.accuracy[0])


def summary(tool: str, s: ToolStats) -> dict:
    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    n = len(s.final)
    human = {}
    for kind in ("click", "scribble"):
        acts = [a for a in s.human if a.kind == kind]
        ratios = [a.ratio for a in acts]
        outside = [100 * (a.outside_after - a.outside_before) for a in acts]
        human[kind] = {
            "actions": len(acts),
            "ratio_median": pct(ratios, 50),
            "ratio_p95": pct(ratios, 95),
            "ratio_max": max(ratios) if ratios else None,
            "iou_gain_median": pct([a.iou_after - a.iou_before for a in acts], 50),
            "outside_points_median": pct(outside, 50),
            "outside_points_p5": pct(outside, 5),
            "spoiled": sum(a.spoiled for a in acts) / max(1, sum(a.changed for a in acts)) if acts else None,
            "latency_ms_median": None if not acts else 1000 * pct([a.latency for a in acts], 50),
        }
    if not n:  # --human-only: the human robot's figures alone
        keys = "mean90 median90 never90 mean95 median95 never95 start_accuracy final_accuracy"
        blank = dict.fromkeys(keys.split())
    else:
        blank = {
            "mean90": statistics.fmean(s.to90),
            "median90": statistics.median(s.to90),
            "never90": s.never90 / n,
            "mean95": statistics.fmean(s.to95),
            "median95": statistics.median(s.to95),
            "never95": s.never95 / n,
            "start_accuracy": statistics.fmean(s.start),
            "final_accuracy": statistics.fmean(s.final),
        }
    return {
        "tool": tool,
        "images": n,
        **blank,
        "noc85": statistics.fmean(s.noc85) if s.noc85 else None,
        "noc90": statistics.fmean(s.noc90) if s.noc90 else None,
        "iou_first_click": statistics.fmean(s.iou1) if s.iou1 else None,
        "objects": len(s.noc85),
        "latency_ms_median": None if not s.latency else 1000 * pct(s.latency, 50),
        "latency_ms_p90": None if not s.latency else 1000 * pct(s.latency, 90),
        "prepare_s_median": statistics.median(s.prepare) if s.prepare else None,
        "spoiled": s.spoiled / s.changed if s.changed else None,
        "worst_action_spoiled": s.worst,
        "human": human if s.human else None,
    }


def table(rows: list[dict]) -> str:
    def f(v: object, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    out = [
        "| tool | to 90 % mean / median | never | to 95 % mean / median | never | NoC@85 | NoC@90 | "
        "latency median / p90 ms | precompute s | changed px made wrong | worst action |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["images"]:
            continue
        out.append(
            f"| {r['tool']} | {f(r['mean90'])} / {f(r['median90'], '{:g}')} | {f(r['never90'], '{:.0%}')} | "
            f"{f(r['mean95'])} / {f(r['median95'], '{:g}')} | {f(r['never95'], '{:.0%}')} | {f(r['noc85'])} | "
            f"{f(r['noc90'])} | {f(r['latency_ms_median'], '{:.0f}')} / {f(r['latency_ms_p90'], '{:.0f}')} | "
            f"{f(r['prepare_s_median'], '{:.2f}')} | {f(r['spoiled'], '{:.0%}')} | "
            f"{f(r['worst_action_spoiled'], '{:.1%}')} |"
        )
    humans = [(r["tool"], kind, h) for r in rows if r["human"] for kind, h in r["human"].items()]
    if not any(r["images"] for r in rows):  # --human-only
        out = []
    if humans:
        out += [
            "",
            "| human robot | actions | changed / object area median / p95 / max | object IoU gain median | "
            "rest of image, points median / p5 | changed px made wrong | latency median ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for tool, kind, h in humans:
            out.append(
                f"| {tool} {kind} | {h['actions']} | {f(h['ratio_median'], '{:.2f}')} / "
                f"{f(h['ratio_p95'], '{:.2f}')} / {f(h['ratio_max'], '{:.2f}')} | "
                f"{f(h['iou_gain_median'], '{:+.3f}')} | {f(h['outside_points_median'], '{:+.3f}')} / "
                f"{f(h['outside_points_p5'], '{:+.2f}')} | {f(h['spoiled'], '{:.0%}')} | "
                f"{f(h['latency_ms_median'], '{:.0f}')} |"
            )
    return "\n".join(out)


def _old_rule() -> None:
    """The click rule before issue #19, for a reference measured in the same way: every pixel still equal
    to the model's prediction counts as unlabeled for the engines, and nothing limits a click's extent."""
    from segstudio.core.interactive import click_session
    from segstudio.core.interactive.evidence import MaskEvidence, confirmed_labels

    click_session.limit_to_object = lambda region, *args, **kwargs: region
    MaskEvidence.confirmed = property(lambda self: confirmed_labels(self.labels, self.prediction))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.annotate", description=__doc__.split("\n")[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--masks", type=Path, required=True, help="class-index PNGs (palette ok), 255 = void")
    p.add_argument("--scheme", required=True, help="scheme JSON file or a preset name (voc, cityscapes)")
    p.add_argument(
        "--start",
        choices=("empty", "simulated", "model"),
        default="empty",
        help="empty mask, a simulated pre-annotation (truth degraded as a model errs), or --weights' prediction",
    )
    p.add_argument("--list", type=Path, default=None, help="only the stems listed (first word per line)")
    p.add_argument("--human", action="store_true", help="click tools: also the 'human' robot (see above)")
    p.add_argument("--human-only", action="store_true", help="only the 'human' robot (click tools)")
    p.add_argument(
        "--old-rule",
        action="store_true",
        help="reference: the rule before issue #19 (every model guess is fair game, no limit near the click)",
    )
    p.add_argument("--weights", help="checkpoint file for --start model")
    p.add_argument("--tools", default=None, help=f"comma-separated (default: {DEFAULT_TOOLS}[,click:crf])")
    p.add_argument("--target", type=float, default=0.95, help="stop an image at this pixel accuracy")
    p.add_argument("--max-actions", type=int, default=60)
    p.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    p.add_argument("--stride", type=int, default=1, help="only every K-th image (a spread-out subset)")
    p.add_argument(
        "--min-object", type=float, default=0.005, help="NoC objects: minimum fraction of the image"
    )
    p.add_argument("--objects", type=int, default=6, help="NoC objects: at most this many largest per image")
    p.add_argument(
        "--sam-checkpoint",
        type=Path,
        default=None,
        help="a Segment Anything checkpoint file: adds the click:sam engine (the GUI's sam engine)",
    )
    p.add_argument(
        "--click-model",
        type=Path,
        default=None,
        help="a click model file (segstudio train --click-model): adds the click:learned engine "
        "(default: the one stored next to --weights, when there is one)",
    )
    p.add_argument(
        "--click-model-unguided",
        action="store_true",
        help="the learned engine without its guided filter (the crop's raw boundary: before/after)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.start == "model" and not args.weights:
        p.error("--start model needs --weights FILE (a SegStudio checkpoint)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.old_rule:
        _old_rule()
    try:
        scheme = get_scheme(args.scheme)
        found = pairs(args.images, args.masks, None if args.list else args.limit, args.stride)
        if args.list is not None:
            wanted = {line.split()[0] for line in args.list.read_text().splitlines() if line.strip()}
            found = [pair for pair in found if pair[0].stem in wanted][: args.limit]
        model = (
            ModelStart(args.weights, args.scheme)
            if args.start == "model"
            else SimulatedStart(scheme.num_classes)
            if args.start == "simulated"
            else None
        )
        if args.sam_checkpoint is not None:
            from segstudio.ml.sam_engine import use_sam_checkpoint

            use_sam_checkpoint(args.sam_checkpoint)  # registers the "sam" engine, as the GUI's menu does
        if args.click_model is None and args.weights:  # a version's checkpoint carries its click model
            from segstudio.ml.click_model_files import click_model_path

            args.click_model = click_model_path(args.weights)
        if args.click_model is not None:
            from segstudio.ml.click_engine import use_click_model

            if not args.click_model.is_file():
                raise SegStudioError(f"--click-model {args.click_model}: no such file")
            use_click_model(args.click_model, guided=not args.click_model_unguided)  # the "learned" engine
    except (SegStudioError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    default = DEFAULT_TOOLS + (",click:crf" if model else "") + (",click:sam" if args.sam_checkpoint else "")
    default += ",click:learned" if args.click_model else ""
    tools = (args.tools or default).split(",")
    stats = {t: ToolStats() for t in tools}
    start_accuracy: list[float] = []
    for image_path, mask_path in found:
        image = load_image(image_path)
        truth = np.array(Image.open(mask_path))
        truth = np.where(truth < scheme.num_classes, truth, VOID).astype(np.uint8)
        probs = confidence = None
        start = np.full(truth.shape, VOID, np.uint8)
        if model is not None:
            start, probs = model(image, truth)
            confidence = np.rint(255 * probs.max(axis=0)).astype(np.uint8)
        start_accuracy.append(pixel_accuracy(start, truth))
        objs = objects(truth, args.min_object, args.objects)
        cache: dict = {}
        for tool in tools:
            run_tool(tool, image, truth, start, probs, stats[tool], args, objs, cache, confidence)
        print(f"{image_path.name}: done", file=sys.stderr, flush=True)
    rows = [summary(t, s) for t, s in stats.items()]
    meta = {
        "images": [p.name for p, _ in found],
        "start": args.start,
        "max_actions": args.max_actions,
        "start_accuracy": statistics.fmean(start_accuracy) if start_accuracy else None,
        "click_model_guided": None if args.click_model is None else not args.click_model_unguided,
    }
    if args.json:
        print(json.dumps({"meta": meta, "tools": rows}))
    else:
        print(
            f"{len(found)} images, start {args.start} (pixel accuracy {meta['start_accuracy']:.1%}), "
            f"max {args.max_actions} actions\n"
        )
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
