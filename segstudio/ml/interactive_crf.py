"""The ``crf`` click engine: the model's class probabilities + dense CRF, clicks as hard constraints.

Why this shape (measured, see tests/ml/test_interactive_crf.py): writing a click into the unary
alone moves nothing past the clicked disc - the CRF's pairwise terms cannot outvote a confident
model over a whole object. So a click works in two steps: (1) the superpixel-geodesic engine
proposes where the click's object probably extends, and class c becomes the likely label there
(``PRIOR``); clicks themselves are near-certain (``CERTAIN``, positive: c, negative: not c);
(2) the dense CRF (`segstudio.ml.crf`, public API) snaps that proposal to colour edges, using the
model's probabilities everywhere else. Latency (the 100 ms click budget): the CRF runs on the proposal's
bounding box plus a margin, at reduced resolution (at least 1/2, raised so the grid has at most
`GRID_PIXELS`), over the classes that reach 2 % in that window only; the edits are made on that grid.
`bench/click_crf.py` measured 181/387 ms per click (median/p90) before, ~30/45 ms after, same IoU.
Returns refined "c leads" (connected to a click), upsampled bilinearly from the grid.
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.errors import UsageError
from segstudio.core.interactive.engines import Engine, SuperpixelEngine, register_engine
from segstudio.core.interactive.prompts import Prompts
from segstudio.ml.crf import CRFParams, crf_grid, refine_probabilities, resize_chw

__all__ = ["CRFClickEngine"]

CERTAIN = 0.999
PRIOR = 0.8
MARGIN = 24  # pixels of context around the proposal for the CRF
GRID_PIXELS = (
    4096  # the window's CRF grid at most (scale raised to fit): ~30 ms per click (bench/click_crf.py)
)
LOW_STRIDE = 4  # the per-image copy of the probabilities used to pick a window's classes


class CRFClickEngine(Engine):
    name = "crf"
    needs_probabilities = True
    tolerance = 100.0  # the proposal's geodesic tolerance (see SuperpixelEngine)

    def __init__(self, tolerance: float | None = None, iterations: int = 5, seed_radius: int = 4) -> None:
        super().__init__(tolerance)
        self.iterations = iterations
        self.seed_radius = seed_radius
        self.crf_scale = 2.0  # at least half resolution (spatial kernels scaled to match)
        #: grid pixels the window's CRF may use (the scale is raised to fit); None: the former behaviour
        #: (`crf_scale`, lowered on small windows; 181/387 ms per click median/p90; `bench/click_crf.py` runs both)
        self.grid_pixels: int | None = GRID_PIXELS
        self.proposer = SuperpixelEngine(self.tolerance)
        self._low: np.ndarray | None = None  # probabilities at 1/LOW_STRIDE: which classes a window holds

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        if probabilities is None:
            raise UsageError("the crf engine needs the model's class probabilities: predict the image first")
        super().prepare(image, probabilities)
        h, w = self.image.shape[:2]
        if probabilities.ndim != 3 or abs(probabilities.shape[1] / h - probabilities.shape[2] / w) > 0.05:
            raise UsageError(f"probabilities {probabilities.shape} do not match the image {self.image.shape}")
        probs = np.ascontiguousarray(probabilities, dtype=np.float32)
        if probs.shape[1:] != (h, w):  # stored reduced (core.probabilities): back to the image size
            probs = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])
        self.probabilities = probs
        lh, lw = max(1, h // LOW_STRIDE), max(1, w // LOW_STRIDE)
        self._low = np.stack([cv2.resize(p, (lw, lh), interpolation=cv2.INTER_AREA) for p in probs])
        self.proposer.prepare(self.image)

    def _region(self, prompts: Prompts, active_class: int, barrier: np.ndarray | None) -> np.ndarray:
        assert self.image is not None and self.probabilities is not None
        c = int(active_class)
        n = self.probabilities.shape[0]
        if not 0 <= c < n:
            raise UsageError(f"class {c} is outside the model's {n} classes")
        self.proposer.tolerance = self.tolerance
        proposal = self.proposer._region(prompts, c, barrier)
        pos, neg = prompts.seed_masks(self.image.shape[:2], radius=self.seed_radius)
        h, w = proposal.shape
        x, y, bw, bh = cv2.boundingRect((proposal | pos).view(np.uint8))
        x0, y0 = max(0, x - MARGIN), max(0, y - MARGIN)
        x1, y1 = min(w, x + bw + MARGIN), min(h, y + bh + MARGIN)
        crop = (slice(y0, y1), slice(x0, x1))
        keep = self._window_classes(crop, c)
        scale = (
            self.crf_scale
            if self.grid_pixels is None
            else max(self.crf_scale, float(np.sqrt((y1 - y0) * (x1 - x0) / self.grid_pixels)))
        )
        # the former engine kept >= 16 384 grid pixels on small windows (the CRF default then)
        params = CRFParams(
            iterations=self.iterations,
            scale=scale,
            min_pixels=1 if self.grid_pixels else 16_384,
            max_pixels=1 << 30,
        )
        _, gh, gw = crf_grid(params, y1 - y0, x1 - x0)
        probs = resize_chw(self.probabilities[keep, crop[0], crop[1]], gh, gw)
        k = int(np.searchsorted(keep, c))
        _set(probs, _on_grid(proposal[crop], gh, gw, 0.5), k, PRIOR)
        _set(probs, _on_grid(pos[crop], gh, gw, 0.0), k, CERTAIN)
        _unset(probs, _on_grid(neg[crop], gh, gw, 0.0), k)
        probs /= np.maximum(probs.sum(axis=0, keepdims=True), 1e-6)
        q = refine_probabilities(np.ascontiguousarray(self.image[crop]), probs, params)
        others = np.delete(q, k, axis=0).max(axis=0) if len(keep) > 1 else np.zeros_like(q[k])
        lead = cv2.resize(q[k] - others, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        region = np.zeros((h, w), bool)
        region[crop] = lead > 0
        return region

    def _window_classes(self, crop: tuple[slice, slice], c: int) -> np.ndarray:
        """Classes that reach 2 % in the window (from the 1/LOW_STRIDE copy) plus the active one: 3-4 instead
        of 21 make the CRF ~5x faster, and the other classes' edits cost nothing."""
        assert self._low is not None
        window = self._low[
            :, _low_slice(crop[0], self._low.shape[1]), _low_slice(crop[1], self._low.shape[2])
        ]
        present = np.flatnonzero(window.reshape(len(window), -1).max(axis=1) >= 0.02)
        return np.union1d(present, [c])


def _low_slice(full: slice, size: int) -> slice:
    """`full` (image pixels) on the 1/LOW_STRIDE copy of `size` cells: never empty."""
    start = min(full.start // LOW_STRIDE, size - 1)
    return slice(start, max(start + 1, -(-full.stop // LOW_STRIDE)))


def _on_grid(mask: np.ndarray, gh: int, gw: int, above: float) -> np.ndarray:
    """A full-resolution mask on the CRF grid: cells covered more than `above` (0: any click pixel counts)."""
    if mask.shape == (gh, gw):
        return mask
    return cv2.resize(mask.view(np.uint8).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) > above


def _set(probs: np.ndarray, where: np.ndarray, c: int, p: float) -> None:
    """Class c gets probability p where set; the others share the rest as the model had them."""
    if not where.any():
        return
    share = probs[:, where]
    share[c] = 0.0
    share *= (1.0 - p) / np.maximum(share.sum(axis=0, keepdims=True), 1e-6)
    share[c] = p
    probs[:, where] = share


def _unset(probs: np.ndarray, where: np.ndarray, c: int) -> None:
    """ "Not c" where set: c's share moves to the other classes in proportion to theirs."""
    if not where.any():
        return
    share = probs[:, where]
    share[c] = 0.0
    share /= np.maximum(share.sum(axis=0, keepdims=True), 1e-6)
    probs[:, where] = share * CERTAIN + (1.0 - CERTAIN) / probs.shape[0]


register_engine("crf", CRFClickEngine)
