"""The simulated annotator of the interactive-segmentation literature, over our tool functions.

After each action the robot finds the largest error region (pixels whose label differs from the
truth, grouped by their true class, void ignored) and acts at its interior point farthest from
the region's boundary (distance transform). `bench/annotate.py` runs it per tool; the unit tests
use it to check tools on real photos. Pure numpy/OpenCV: no Qt, no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from segstudio.core.interactive.click_session import ClickSession
from segstudio.core.interactive.engines import Engine, grabcut_region
from segstudio.core.interactive.evidence import MaskEvidence, confirmed_labels
from segstudio.core.interactive.regions import paste_region, pixel_accuracy
from segstudio.core.interactive.superpixels import Superpixels, superpixel_brush
from segstudio.core.interactive.wand import magic_wand
from segstudio.core.schemes import UNLABELED

__all__ = [
    "BRUSH_MAX_RADIUS",
    "ErrorSpot",
    "ObjectAction",
    "Trace",
    "confirmed_labels",
    "human_actions",
    "interior_point",
    "largest_error",
    "object_clicks",
    "object_iou",
    "polygon_trace",
    "run_image",
    "scribble_through",
    "wrong_objects",
]

VOID = UNLABELED  # truth pixels that no tool is scored on
BRUSH_MAX_RADIUS = 50


@dataclass(frozen=True)
class ErrorSpot:
    x: int
    y: int
    true_class: int
    radius: float  # distance to the error region's boundary at (x, y)
    region: np.ndarray  # boolean mask of the error region


def interior_point(region: np.ndarray) -> tuple[int, int, float]:
    """(x, y, distance) of the pixel of `region` farthest from its boundary (image border included)."""
    padded = np.pad(region.astype(np.uint8), 1)
    dt = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(dt.argmax()), dt.shape)
    return int(x), int(y), float(dt[y, x])


def largest_error(labels: np.ndarray, truth: np.ndarray) -> ErrorSpot | None:
    """The largest connected error region (per true class) and the point the robot acts at."""
    error = (labels != truth) & (truth != VOID)
    if not error.any():
        return None
    best: tuple[int, int, np.ndarray, int] | None = None  # (area, class, labels, id)
    for c in np.unique(truth[error]):
        count, comp, stats, _ = cv2.connectedComponentsWithStats(
            (error & (truth == c)).view(np.uint8), connectivity=8
        )
        if count > 1:
            k = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
            if best is None or stats[k, cv2.CC_STAT_AREA] > best[0]:
                best = (int(stats[k, cv2.CC_STAT_AREA]), int(c), comp, k)
    assert best is not None
    region = best[2] == best[3]
    x, y, r = interior_point(region)
    return ErrorSpot(x, y, best[1], r, region)


@dataclass
class Trace:
    """Accuracy after each action (index 0 = before any action) and each action's latency."""

    accuracy: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)  # pixels each action changed
    spoiled: list[int] = field(default_factory=list)  # of those, pixels that became wrong (void ignored)

    @property
    def spoiled_fraction(self) -> list[float]:
        """Per action: the share of its changed pixels that ended up wrong (collateral damage)."""
        return [s / c for s, c in zip(self.spoiled, self.changed, strict=True) if c]

    def actions_to(self, target: float) -> int | None:
        for i, acc in enumerate(self.accuracy):
            if acc >= target:
                return i
        return None


Action = Callable[[np.ndarray, ErrorSpot], np.ndarray]  # (labels, spot) -> changed labels (in place ok)


def _simple_action(
    tool: str, image: np.ndarray, superpixels: Superpixels | None, tolerance: float | None
) -> Action:
    def act(labels: np.ndarray, spot: ErrorSpot) -> np.ndarray:
        if tool == "ideal":
            region = spot.region
        elif tool == "brush":
            region = np.zeros(labels.shape, np.uint8)
            cv2.circle(region, (spot.x, spot.y), int(min(spot.radius, BRUSH_MAX_RADIUS)), 1, -1)
            region = region.astype(bool)
        elif tool == "spbrush":
            assert superpixels is not None
            region = superpixel_brush(superpixels, [(spot.x, spot.y)], min(spot.radius, BRUSH_MAX_RADIUS))
        elif tool == "wand":
            region = magic_wand(image, spot.x, spot.y, *(() if tolerance is None else (tolerance,)))
        elif tool == "box":
            from segstudio.core.interactive.prompts import Prompts

            x, y, w, h = cv2.boundingRect(spot.region.view(np.uint8))
            region = grabcut_region(image, Prompts(box=(x, y, x + w - 1, y + h - 1)))
        else:
            raise ValueError(f"unknown robot tool {tool!r}")
        paste_region(labels, region, spot.true_class)
        return labels

    return act


def run_image(
    tool: str,
    image: np.ndarray,
    truth: np.ndarray,
    start: np.ndarray,
    *,
    engine: Engine | None = None,
    superpixels: Superpixels | None = None,
    tolerance: float | None = None,
    target: float = 0.95,
    max_actions: int = 60,
    prediction: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> Trace:
    """Drive one tool on one image until `target` pixel accuracy or `max_actions`.

    `tool` is "click" (smart click with `engine`: positive clicks of the true class refine the open
    object, a click on a pixel the open object got wrong is a negative click), or one of "ideal",
    "brush", "spbrush", "wand", "box" (one action each). `prediction` (default: `start`) and its
    `confidence` are the model's, as the GUI passes them to the click tools.
    """
    labels = start.copy()
    trace = Trace([pixel_accuracy(labels, truth)])
    base = labels.copy()
    valid = truth != VOID
    session: ClickSession | None = None
    simple = None if tool == "click" else _simple_action(tool, image, superpixels, tolerance)
    while trace.accuracy[-1] < target and len(trace.latency) < max_actions:
        spot = largest_error(labels, truth)
        if spot is None:
            break
        before = labels.copy()
        t0 = time.perf_counter()
        if simple is not None:
            simple(labels, spot)
        else:
            assert engine is not None
            in_session = (
                session is not None and session.region is not None and bool(session.region[spot.y, spot.x])
            )
            if session is not None and session.active_class == spot.true_class:
                session.click(spot.x, spot.y, positive=True)
            elif session is not None and in_session and labels[spot.y, spot.x] == session.active_class:
                session.click(spot.x, spot.y, positive=False)
            else:
                base = labels  # accept the open object; start the next one
                evidence = MaskEvidence(base, start if prediction is None else prediction, confidence)
                session = ClickSession(engine, spot.true_class, evidence)
                session.click(spot.x, spot.y, positive=True)
            labels = base.copy()
            paste_region(labels, session.region, session.active_class)
        trace.latency.append(time.perf_counter() - t0)
        changed = labels != before
        trace.changed.append(int(np.count_nonzero(changed)))
        trace.spoiled.append(int(np.count_nonzero(changed & valid & (labels != truth))))
        trace.accuracy.append(pixel_accuracy(labels, truth))
    return trace


def object_clicks(
    engine: Engine,
    obj: np.ndarray,
    active_class: int,
    max_clicks: int = 20,
    latencies: list[float] | None = None,
) -> list[float]:
    """IoU with `obj` after each click of the single-object protocol (NoC): click the larger error.
    Each click's engine seconds go to `latencies` when given (the latency benchmark)."""
    session = ClickSession(engine, active_class)
    region = np.zeros(obj.shape, bool)
    ious: list[float] = []
    for _ in range(max_clicks):
        fn, fp = obj & ~region, region & ~obj
        xn, yn, rn = interior_point(fn) if fn.any() else (0, 0, -1.0)
        xp, yp, rp = interior_point(fp) if fp.any() else (0, 0, -1.0)
        if rn < 0 and rp < 0:
            break
        region = session.click(xn, yn, True) if rn >= rp else session.click(xp, yp, False)
        if latencies is not None:
            latencies.append(session.last_seconds)
        union = np.count_nonzero(region | obj)
        ious.append(np.count_nonzero(region & obj) / union if union else 1.0)
    return ious


def polygon_trace(truth: np.ndarray, start: np.ndarray, epsilon: float = 1.5) -> Trace:
    """labelme-style manual baseline: one click per Douglas-Peucker vertex of each true region,
    largest regions first (smaller ones drawn on top, as annotators layer them)."""
    labels = start.copy()
    trace = Trace([pixel_accuracy(labels, truth)])
    regions = []
    for c in np.unique(truth):
        if c == VOID:
            continue
        contours, _ = cv2.findContours((truth == c).view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        regions += [(cv2.contourArea(ct), int(c), ct) for ct in contours]
    for _, c, contour in sorted(regions, key=lambda r: -r[0]):
        poly = cv2.approxPolyDP(contour, epsilon, True)
        clicks = max(3, len(poly))
        stamp = np.zeros(truth.shape, np.uint8)
        cv2.fillPoly(stamp, [poly], 1)
        cv2.polylines(stamp, [poly], True, 1)
        paste_region(labels, stamp.astype(bool), c)
        acc = pixel_accuracy(labels, truth)
        trace.accuracy.extend([trace.accuracy[-1]] * (clicks - 1) + [acc])
    return trace


@dataclass(frozen=True)
class ObjectAction:
    """One click or scribble of the "human" robot on one true object, from the pre-annotation."""

    kind: str  # "click" or "scribble"
    true_class: int
    area: int  # the object's true area (pixels)
    changed: int  # pixels the action changed
    spoiled: int  # of those, pixels that became wrong
    iou_before: float
    iou_after: float
    outside_before: float  # pixel accuracy outside the object
    outside_after: float
    latency: float

    @property
    def ratio(self) -> float:
        """Changed area over the object's true area (a click means "this object": <= ~1 expected)."""
        return self.changed / self.area


def object_iou(labels: np.ndarray, truth: np.ndarray, obj: np.ndarray, cls: int) -> float:
    """IoU of the true object `obj` with what the mask calls it: the connected parts of class `cls`
    touching it, less the pixels that truly belong to other objects of that class."""
    mine = keep_touching(labels == cls, obj) & ~((truth == cls) & ~obj)
    union = np.count_nonzero(mine | obj)
    return np.count_nonzero(mine & obj) / union if union else 1.0


def keep_touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 8-connected parts of `mask` that overlap `seeds` (nothing when none does)."""
    _count, comp = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    ids = np.unique(comp[seeds & mask])
    return np.isin(comp, ids[ids != 0])


def wrong_objects(
    labels: np.ndarray, truth: np.ndarray, min_area: int, most: int, below: float = 0.85
) -> list[tuple[int, np.ndarray]]:
    """True objects (8-connected regions of one class, >= `min_area` px) the mask gets wrong (IoU <
    `below`), the `most` with the largest wrong area first: what a person looking at the picture fixes."""
    found = []
    for c in np.unique(truth):
        if c == VOID:
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats((truth == c).view(np.uint8), connectivity=8)
        for k in range(1, count):
            if stats[k, cv2.CC_STAT_AREA] < min_area:
                continue
            obj = comp == k
            if object_iou(labels, truth, obj, int(c)) < below:
                found.append((int(np.count_nonzero(obj & (labels != c))), int(c), obj))
    found.sort(key=lambda f: -f[0])
    return [(c, m) for _, c, m in found[:most]]


def _largest_part(mask: np.ndarray) -> np.ndarray:
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    return comp == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax()) if count > 1 else mask


def scribble_through(part: np.ndarray) -> list[tuple[float, float]]:
    """A stroke a person draws inside `part`: along its long axis through its most interior point,
    kept at least 3 px (the stroke's half-width) inside the part."""
    x, y, r = interior_point(part)
    ys, xs = np.nonzero(part)
    cov = np.cov(np.stack([xs, ys]).astype(np.float64)) if len(xs) > 2 else np.eye(2)
    vals, vecs = np.linalg.eigh(cov)
    dx, dy = vecs[:, int(np.argmax(vals))]
    padded = np.pad(part.astype(np.uint8), 1)
    dt = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    keep = min(3.0, r)
    ends = []
    for sign in (-1, 1):
        t, last = 0, (x, y)
        while True:
            t += 1
            px, py = int(round(x + sign * t * dx)), int(round(y + sign * t * dy))
            if not (0 <= py < part.shape[0] and 0 <= px < part.shape[1]) or dt[py, px] < keep:
                break
            last = (px, py)
        ends.append(last)
    return [
        (float(ends[0][0]), float(ends[0][1])),
        (float(x), float(y)),
        (float(ends[1][0]), float(ends[1][1])),
    ]


def human_actions(
    engine: Engine,
    truth: np.ndarray,
    start: np.ndarray,
    *,
    prediction: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    min_area: int = 200,
    most: int = 5,
    kinds: tuple[str, ...] = ("click", "scribble"),
) -> list[ObjectAction]:
    """The "human" robot: for each of the `most` true objects the pre-annotation `start` gets most
    wrong, one click at the most interior point of the object's largest wrongly labelled part (and
    one scribble along that part), each from `start`, judged by the object's IoU and by the accuracy
    of the rest of the image - as a person judges a click from the picture."""
    prediction = start if prediction is None else prediction
    valid = truth != VOID
    out: list[ObjectAction] = []
    for cls, obj in wrong_objects(start, truth, min_area, most):
        part = _largest_part(obj & (start != cls))
        x, y, _ = interior_point(part)
        rest = valid & ~obj
        before_rest = float(np.count_nonzero((start == truth) & rest)) / max(1, int(rest.sum()))
        iou0 = object_iou(start, truth, obj, cls)
        for kind in kinds:
            session = ClickSession(engine, cls, MaskEvidence(start, prediction, confidence))
            t0 = time.perf_counter()
            region = session.click(x, y) if kind == "click" else session.scribble(scribble_through(part))
            latency = time.perf_counter() - t0
            labels = start.copy()
            changed = paste_region(labels, region, cls)
            out.append(
                ObjectAction(
                    kind,
                    cls,
                    int(obj.sum()),
                    int(changed.sum()),
                    int(np.count_nonzero(changed & valid & (labels != truth))),
                    iou0,
                    object_iou(labels, truth, obj, cls),
                    before_rest,
                    float(np.count_nonzero((labels == truth) & rest)) / max(1, int(rest.sum())),
                    latency,
                )
            )
    return out
