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
from segstudio.core.interactive.regions import paste_region, pixel_accuracy
from segstudio.core.interactive.superpixels import Superpixels, superpixel_brush
from segstudio.core.interactive.wand import magic_wand
from segstudio.core.schemes import UNLABELED

__all__ = [
    "BRUSH_MAX_RADIUS",
    "ErrorSpot",
    "Trace",
    "confirmed_labels",
    "interior_point",
    "largest_error",
    "object_clicks",
    "polygon_trace",
    "run_image",
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


def confirmed_labels(labels: np.ndarray, prediction: np.ndarray | None) -> np.ndarray:
    """The labels an engine may trust as finished: pixels still equal to the model's prediction are
    only a guess (the click may be correcting them), so they count as unlabeled."""
    if prediction is None:
        return labels
    return np.where(labels == prediction, np.uint8(VOID), labels).astype(np.uint8)


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
) -> Trace:
    """Drive one tool on one image until `target` pixel accuracy or `max_actions`.

    `tool` is "click" (smart click with `engine`: positive clicks of the true class refine the open
    object, a click on a pixel the open object got wrong is a negative click), or one of "ideal",
    "brush", "spbrush", "wand", "box" (one action each).
    """
    labels = start.copy()
    trace = Trace([pixel_accuracy(labels, truth)])
    base = labels.copy()
    session: ClickSession | None = None
    simple = None if tool == "click" else _simple_action(tool, image, superpixels, tolerance)
    while trace.accuracy[-1] < target and len(trace.latency) < max_actions:
        spot = largest_error(labels, truth)
        if spot is None:
            break
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
                session = ClickSession(engine, spot.true_class, confirmed_labels(base, start))
                session.click(spot.x, spot.y, positive=True)
            labels = base.copy()
            paste_region(labels, session.region, session.active_class)
        trace.latency.append(time.perf_counter() - t0)
        trace.accuracy.append(pixel_accuracy(labels, truth))
    return trace


def object_clicks(engine: Engine, obj: np.ndarray, active_class: int, max_clicks: int = 20) -> list[float]:
    """IoU with `obj` after each click of the single-object protocol (NoC): click the larger error."""
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
