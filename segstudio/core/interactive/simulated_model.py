"""A realistic pre-annotation without a trained network: the ground truth degraded the way a model errs.

Why: the smart tools must be judged *after* pre-annotation (the product's main workflow), where every
pixel already carries a label and a confidence; the test data ships no checkpoint and training one is
too slow for tests. So the benchmark robot and the tests start from this simulated model's output:
- coarse, smooth class scores (one-hot truth area-averaged to a 1/16 grid, blurred, upsampled
  bilinearly, as a DeepLab-style network at output stride 16 sees them): wobbly object borders,
  thin objects (poles, signs) thinned or lost, low confidence along borders;
- low-frequency noise in the scores: blotches of the wrong class over large regions;
- missed objects: about a third of the objects smaller than 3 % of the image take the class of the
  region around them, with a mid-to-high confidence (a model that is confidently wrong too);
- half-missed large regions: one side of some large regions takes a neighbouring class
  (pavement read as road, the typical street-scene confusion).
Deterministic for a given `seed`. Pure numpy/OpenCV (no Qt, no torch).
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.schemes import UNLABELED

__all__ = ["SimulatedPrediction", "simulated_prediction"]

STRIDE = 16  # the network's output stride: scores live on a grid this much coarser than the image
MISS_BELOW = 0.03  # objects smaller than this fraction of the image may be missed whole
MISS_RATE = 0.35
SPLIT_RATE = 0.3  # large regions that lose one side to a neighbouring class
SHARPNESS = 9.0  # softmax temperature on the smoothed one-hot scores: ~0.95 confidence inside regions


class SimulatedPrediction:
    """labels (H, W) uint8, probabilities (C, H, W) float32 summing to 1, confidence (H, W) uint8."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities
        self.labels = probabilities.argmax(axis=0).astype(np.uint8)
        self.confidence = np.rint(probabilities.max(axis=0) * 255).astype(np.uint8)


def _fill_void(truth: np.ndarray) -> np.ndarray:
    """Void pixels take the nearest labelled pixel's class (a model labels every pixel)."""
    void = truth == UNLABELED
    if not void.any() or void.all():
        return np.where(void, 0, truth).astype(np.uint8)
    _, nearest = cv2.distanceTransformWithLabels(
        void.view(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(~void)
    lookup = np.zeros(int(nearest.max()) + 1, np.uint8)
    lookup[nearest[ys, xs]] = truth[ys, xs]
    return np.where(void, lookup[nearest], truth).astype(np.uint8)


def _ring_class(labels: np.ndarray, obj: np.ndarray, own: int) -> int | None:
    """The most common other class in a band around `obj` (what a model would call it instead)."""
    ring = cv2.dilate(obj.view(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~obj
    around = labels[ring]
    around = around[around != own]
    return None if around.size == 0 else int(np.bincount(around).argmax())


def simulated_prediction(truth: np.ndarray, num_classes: int, seed: int = 0) -> SimulatedPrediction:
    """A plausible model output for a photo whose true labels are `truth` (255 = void)."""
    rng = np.random.default_rng(seed)
    h, w = truth.shape
    labels = _fill_void(np.where(truth < num_classes, truth, UNLABELED).astype(np.uint8))
    wrong = labels.copy()
    for c in np.unique(labels):
        count, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).view(np.uint8), connectivity=8)
        for k in range(1, count):
            area = stats[k, cv2.CC_STAT_AREA]
            if area < 64:
                continue
            obj = comp == k
            if area < MISS_BELOW * h * w and rng.random() < MISS_RATE:
                other = _ring_class(labels, obj, int(c))
                if other is not None:
                    wrong[obj] = other
            elif area >= MISS_BELOW * h * w and rng.random() < SPLIT_RATE:
                other = _ring_class(labels, obj, int(c))
                if other is None:
                    continue
                x, y, bw, bh, _ = stats[k]
                angle = rng.uniform(0, 2 * np.pi)
                yy, xx = np.mgrid[0:h, 0:w]
                side = (xx - (x + bw / 2)) * np.cos(angle) + (yy - (y + bh / 2)) * np.sin(angle)
                cut = rng.uniform(0.1, 0.5) * max(bw, bh) / 2
                wrong[obj & (side > cut)] = other
    gh, gw = max(1, -(-h // STRIDE)), max(1, -(-w // STRIDE))
    scores = np.empty((num_classes, h, w), np.float32)
    for c in range(num_classes):
        plane = cv2.resize((wrong == c).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
        plane = cv2.GaussianBlur(plane, (0, 0), 0.8)
        noise = cv2.resize(rng.normal(0, 1, (max(1, gh // 6), max(1, gw // 6))).astype(np.float32), (gw, gh))
        plane = plane + 0.18 * noise
        scores[c] = cv2.resize(plane, (w, h), interpolation=cv2.INTER_LINEAR)
    scores *= SHARPNESS
    scores -= scores.max(axis=0, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=0, keepdims=True)
    return SimulatedPrediction(scores)
