"""A click means "this object": what a click or scribble may take over of a pre-annotated mask.

Why: after pre-annotation every pixel carries the model's label. The engines were told that all of
them count as unlabeled (`evidence.confirmed_labels`), so one click on the pavement of a predicted
street photo grew over every grey pixel: 66 % of the frame for `superpixel` (issue #19); the "human"
robot (`robot.human_actions`, docs/smart-tools.md) measured a median 8x, p95 111x the clicked
object's true area. Colour similarity is not enough evidence to overrule the model over the whole
photo. Two rules, both engine-independent (every engine, present or future, goes through
`ClickSession`):
1. the engines see the guesses the model was sure of (confidence >= `evidence.UNSURE`) as labels,
   so they stop at other classes as they do at the user's labels (`MaskEvidence.confirmed`);
2. after the engine, a model guess may only be taken (`limit_to_object`)
   - near the prompt: within `REACH` times the prompt point's distance to the nearest colour edge
     or predicted class border (a person clicks inside the object, so that distance is the
     object's scale there; a scribble is a chain of such points), only through pixels connected to
     the point without crossing one; at least `MIN_RADIUS` px so every click shows something, at
     most `MAX_RADIUS` of the long side (a flat sky has neither edges nor borders);
   - and only where the model is unsure or labelled the pixel with the class under the prompt
     (the user says that label is wrong here); a confident guess of another class needs a click
     of its own.
Pixels the user labelled, unlabeled pixels and the active class keep the engine's own rules, and a
box (which bounds the object itself) is not limited, so an image without a prediction behaves as before.

An *object-bounded* engine (the learned click model) skips rule 2, but its region starts from the
segmentation model's region of the clicked class, which can cover pixels the user already corrected
away from that class. `keep_corrections` keeps those: a click takes the user's own labels of
another class only within the click's window of rule 2 (the user clicked on their own mistake).
Measured: one frame's road click re-took 12 000 correctly relabelled pixels three times.
"""

from __future__ import annotations

import itertools
import weakref

import cv2
import numpy as np

from segstudio.core.interactive.evidence import UNSURE, MaskEvidence
from segstudio.core.interactive.prompts import Point, Prompts
from segstudio.core.interactive.regions import keep_seeded
from segstudio.core.schemes import UNLABELED

__all__ = [
    "MIN_RADIUS",
    "REACH",
    "UNSURE",
    "border_distance",
    "edge_distance",
    "keep_corrections",
    "limit_to_object",
    "object_window",
    "warm_up",
]

REACH = 1.5  # a prompt point's window: this many times its distance to the nearest edge or border
MIN_RADIUS = 6  # px: the smallest window (a click right on an edge still does something)
MAX_RADIUS = 0.1  # of the long side: the largest window (a flat area without edges or predicted borders)
EDGE_PERCENTILE = 90.0  # Canny's high threshold: this percentile of the image's gradient magnitude
EDGE_FLOOR = 20.0  # ... but at least this (a flat image has no edges, not noise edges)
EDGE_SIGMA = 1.5  # px: the blur before the edges (texture inside an object is not its border)
SCRIBBLE_STEP = 4.0  # px between the window points sampled along a scribble

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> its image's maps (_cached_scale)


def edge_distance(image: np.ndarray) -> np.ndarray:
    """Per pixel, the distance (px) to the nearest colour edge of `image` (float32 HxW)."""
    grey = cv2.GaussianBlur(cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY), (0, 0), EDGE_SIGMA)
    # thresholds relative to the image's own contrast: fixed ones found no kerb on a dusk frame
    magnitude = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    sample = magnitude[::4, ::4]  # the percentile of a 1/16 sample: the same threshold, ~15x faster
    high = max(EDGE_FLOOR, float(np.percentile(sample, EDGE_PERCENTILE)))
    edges = cv2.Canny(grey, high / 2, high)
    return cv2.distanceTransform((edges == 0).view(np.uint8), cv2.DIST_L2, 3)


def border_distance(prediction: np.ndarray) -> np.ndarray:
    """Per pixel, the distance (px) to the nearest place where the model's labels change class."""
    border = np.zeros(prediction.shape, bool)
    border[:, 1:] |= prediction[:, 1:] != prediction[:, :-1]
    border[1:, :] |= prediction[1:, :] != prediction[:-1, :]
    return cv2.distanceTransform((~border).view(np.uint8), cv2.DIST_L2, 3)


def scale_map(image: np.ndarray | None, prediction: np.ndarray) -> np.ndarray:
    """The object scale at each pixel: the distance to the nearest colour edge or predicted border,
    whichever is nearer (a dusk frame has no edge at the kerb; a missed sign has no predicted border).
    Without the image (an engine that does not keep it), the predicted borders alone."""
    borders = border_distance(prediction)
    return borders if image is None else np.minimum(edge_distance(image), borders)


def warm_up(engine: object) -> None:
    """Compute the engine image's edge distances now (the GUI calls this on the preparation worker, so
    the first click does not pay ~0.2 s on a 2-megapixel photo)."""
    image = getattr(engine, "image", None)
    if image is not None:
        _cached_scale(engine, image, None)


def _cached_scale(owner: object, image: np.ndarray, prediction: np.ndarray | None) -> np.ndarray:
    """`scale_map`, kept per engine: the edge distances per image, the scale per prediction (each click
    would redo them: ~0.1 s per megapixel). `prediction` None: only the edge distances."""
    try:
        entry = _cache.get(owner)
    except TypeError:  # not weak-referenceable: no cache
        return edge_distance(image) if prediction is None else scale_map(image, prediction)
    if entry is None or entry["image"] is not image:
        entry = {"image": image, "edges": edge_distance(image), "prediction": None, "scale": None}
        _cache[owner] = entry
    if prediction is None:
        return entry["edges"]
    if entry["prediction"] is not prediction:
        entry["prediction"], entry["scale"] = (
            prediction,
            np.minimum(entry["edges"], border_distance(prediction)),
        )
    return entry["scale"]


def _prompt_points(prompts: Prompts) -> list[Point]:
    points = list(prompts.positives)
    for stroke in prompts.scribbles:
        pts = np.asarray(stroke, np.float64).reshape(-1, 2)
        points.append(tuple(pts[0]))
        for a, b in itertools.pairwise(pts):
            n = max(1, int(np.ceil(np.hypot(*(b - a)) / SCRIBBLE_STEP)))
            points += [tuple(a + (b - a) * (i / n)) for i in range(1, n + 1)]
    return points  # type: ignore[return-value]


def object_window(distance: np.ndarray, points: list[Point]) -> np.ndarray:
    """Where an object clicked at `points` may extend: per point a disc of radius REACH x its edge
    distance (>= MIN_RADIUS), only the part connected to the point without crossing an edge."""
    return _window(distance, points)[0]


def _window(distance: np.ndarray, points: list[Point]) -> tuple[np.ndarray, tuple[slice, slice] | None]:
    """`object_window` and its bounding box (None when empty)."""
    h, w = distance.shape
    window = np.zeros((h, w), bool)
    top, left, bottom, right = h, w, 0, 0
    for x, y in points:
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < w and 0 <= yi < h):
            continue
        r = min(max(float(MIN_RADIUS), REACH * float(distance[yi, xi])), MAX_RADIUS * max(h, w))
        ri = int(np.ceil(r))
        y0, y1, x0, x1 = max(0, yi - ri), min(h, yi + ri + 1), max(0, xi - ri), min(w, xi + ri + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disc = (yy - yi) ** 2 + (xx - xi) ** 2 <= r * r
        open_ = disc & (distance[y0:y1, x0:x1] > 0)  # off the edge and border pixels
        if open_[yi - y0, xi - x0]:
            _n, comp = cv2.connectedComponents(open_.view(np.uint8), connectivity=4)
            part = comp == comp[yi - y0, xi - x0]
            part = cv2.dilate(part.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & disc
        else:  # on an edge: the small disc
            part = (yy - yi) ** 2 + (xx - xi) ** 2 <= MIN_RADIUS**2
        window[y0:y1, x0:x1] |= part
        top, left, bottom, right = min(top, y0), min(left, x0), max(bottom, y1), max(right, x1)
    return window, (None if bottom <= top else (slice(top, bottom), slice(left, right)))


def limit_to_object(
    region: np.ndarray,
    prompts: Prompts,
    active_class: int,
    evidence: MaskEvidence,
    image: np.ndarray | None,
    owner: object | None = None,
    memo: dict | None = None,
) -> np.ndarray:
    """`region` less the model guesses a click has no business taking (see the module doc); connected
    to the prompts. A box prompt is left alone (the box already bounds the object). `owner` (the
    engine) keeps the image's maps, `memo` (one per object: `ClickSession`) the evidence's."""
    if prompts.box is not None or evidence.prediction is None:
        return region
    memo = {} if memo is None else memo
    if "guessed" not in memo:  # guesses of other classes than the object's: what the limit is about
        memo["guessed"] = evidence.guesses & (evidence.labels != active_class)
    guessed = memo["guessed"]
    labels = evidence.labels
    pos, _neg = prompts.seed_masks(labels.shape)
    taken = region & guessed
    if not taken.any():
        return region
    prediction = evidence.prediction
    cached = owner is not None and image is not None
    distance = _cached_scale(owner, image, prediction) if cached else scale_map(image, prediction)
    window, box = _window(distance, _prompt_points(prompts))
    limited = region & ~guessed  # outside the window no guess is taken
    if box is not None:  # inside it: the unsure guesses and those of the class under the prompt
        under = np.setdiff1d(np.unique(labels[pos]), [active_class, UNLABELED])
        may = (evidence.sureness_in(box) < UNSURE) | np.isin(labels[box], under)
        limited[box] |= region[box] & guessed[box] & may & window[box]
    return keep_seeded(limited, pos)


def keep_corrections(
    region: np.ndarray,
    prompts: Prompts,
    active_class: int,
    evidence: MaskEvidence,
    image: np.ndarray | None = None,
    owner: object | None = None,
) -> np.ndarray:
    """`region` less the user's own corrections of other classes (pixels whose label differs from the
    model's prediction), except near a positive prompt (its window, as rule 2: the user clicked on
    their own mistake, which need not be the whole correction it is connected to). An image without
    a prediction has no corrections to tell apart: unchanged."""
    if evidence.prediction is None:
        return region
    labels = evidence.labels
    own = (labels != evidence.prediction) & (labels != UNLABELED) & (labels != active_class)
    taken = region & own
    if not taken.any():
        return region
    pos, _neg = prompts.seed_masks(labels.shape)
    prediction = evidence.prediction
    cached = owner is not None and image is not None
    distance = _cached_scale(owner, image, prediction) if cached else scale_map(image, prediction)
    window = object_window(distance, _prompt_points(prompts))
    return keep_seeded(region & ~(taken & ~window), pos)
