"""The segmentation model's evidence a click model starts from: per-pixel class probabilities of one frame.

Why (issue #21, measured in docs/click-model.md): a click model trained from scratch on ~100 frames
has no notion of "object", so its first click found almost nothing (IoU 0.01-0.06). The project
always has a segmentation model trained on its own domain; its probability of the clicked class
is the "what is an object of this class here" the click model lacks. It is computed once per
frame (the engine's `prepare`, off the GUI thread) and every click crops it like the image.

- `SegEvidence`: the probabilities of one frame (uint8, round(255 p), C x H x W: 1/4 of float32's
  memory), the class plane of the clicked class, and the first-click *proposal*: the connected
  part of "the model says class c" containing the click, which the click model takes as its
  previous mask so its first answer starts from the model's object instead of from nothing.
- `SegEvidence.misnamed`: where the model disagrees with the click, the model's own segment under it
  (of whatever class it called it), within reach: the model often finds the object's extent and only
  names it wrong (a building behind trees called fence), and a textured object's colour region is
  a few specks (measured: docs/click-model.md, *Misnamed segments*).
- `colour_proposal`: for click models trained before `misnamed`, where the model disagrees with
  the click (no proposal: the user is correcting the model there), the colour region around it
  stands in, so the network refines a region instead of growing one from nothing (measured:
  docs/click-model.md, *Where the model disagrees*).
- `segmentation_probabilities`: runs a project checkpoint (a version's best.pt) on one frame,
  with the loaded model cached per file.
Pure numpy/OpenCV except `segmentation_probabilities` (torch, loaded lazily).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import UsageError

__all__ = [
    "COLOUR_REACH",
    "LOW",
    "MISNAMED_REACH",
    "SegEvidence",
    "click_pixel",
    "colour_proposal",
    "segmentation_probabilities",
]

#: a click on a pixel the model did not call class c (an error the user corrects) takes the
#: connected part of p_c >= LOW around it as its proposal (a missed object often still has some p_c)
LOW = 0.25
#: the colour proposal's extent: at most this fraction of the frame's long side from the click (a
#: flat sky or road would otherwise flood the frame; the click model's crop is sized from it)
COLOUR_REACH = 0.15
#: the misnamed segment's extent (fraction of the long side from the click), as the colour region's:
#: a click on a misnamed strip of road must not take the whole road (0.3 measured worse: docs/click-model.md)
MISNAMED_REACH = COLOUR_REACH
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def click_pixel(shape: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    """The click's pixel (column, row), clamped into a frame of `shape` (a click may land on its edge)."""
    h, w = shape
    return min(max(int(round(x)), 0), w - 1), min(max(int(round(y)), 0), h - 1)


class SegEvidence:
    """Class probabilities of one frame at the frame's size (C x H x W)."""

    def __init__(self, probabilities: np.ndarray, shape: tuple[int, int] | None = None) -> None:
        probs = np.asarray(probabilities)
        if probs.ndim != 3 or 0 in probs.shape:
            raise UsageError(
                f"class probabilities must be C x H x W with at least one class and pixel, got {probs.shape}"
            )
        if probs.dtype != np.uint8:
            # NaN would cast to an arbitrary byte: a broken segmentation model must say so, not steer clicks
            if not np.isfinite(probs).all():
                raise UsageError(
                    "the segmentation model's class probabilities contain NaN or infinity; "
                    "it gives the click model no evidence: train that model version again"
                )
            probs = np.rint(np.clip(probs, 0.0, 1.0) * 255).astype(np.uint8)
        if shape is not None and probs.shape[1:] != tuple(shape):  # stored reduced: back to the frame
            h, w = shape
            probs = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])
        self.probs = np.ascontiguousarray(probs)
        self.labels = self.probs.argmax(axis=0).astype(np.uint8)
        self._memo: dict[tuple, np.ndarray] = {}

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return self.probs.shape[1], self.probs.shape[2]

    def plane(self, c: int) -> np.ndarray:
        """p(class c) per pixel, float32 in [0, 1] (zeros for a class the model does not know)."""
        if not 0 <= c < self.num_classes:
            return np.zeros(self.shape, np.float32)
        return self.probs[c].astype(np.float32) / 255.0

    def _pixel(self, x: float, y: float) -> tuple[int, int]:
        return click_pixel(self.shape, x, y)

    def _components(self, c: int, kind: str) -> np.ndarray:
        """8-connected components of (argmax == c) or (p_c >= LOW), memoised per (c, kind): the robot
        and users click one object repeatedly, and `proposal` and `misnamed` share the argmax ones."""
        key = (c, kind)
        if key not in self._memo:
            mask = self.labels == c if kind == "argmax" else self.probs[c] >= round(255 * LOW)
            _n, comp = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
            self._memo[key] = comp
        return self._memo[key]

    def proposal(self, c: int, x: float, y: float) -> np.ndarray:
        """The first click's proposal: the 8-connected part of (argmax == c) containing the click;
        if the model did not call the click's pixel c, the part of p_c >= LOW containing it; else
        nothing."""
        xi, yi = self._pixel(x, y)
        if not 0 <= c < self.num_classes:
            return np.zeros(self.shape, bool)
        for kind in ("argmax", "low"):
            comp = self._components(c, kind)
            k = comp[yi, xi]
            if k:
                return comp == k
        return np.zeros(self.shape, bool)

    def misnamed(self, x: float, y: float, reach: float = MISNAMED_REACH) -> np.ndarray:
        """The model's segment under the click, whatever class it called it: the 8-connected part of
        (argmax == the label at the click) containing it, within `reach` of the long side from the
        click. For a click the model disagrees with (no `proposal`): the user is renaming it."""
        h, w = self.shape
        xi, yi = self._pixel(x, y)
        comp = self._components(int(self.labels[yi, xi]), "argmax")
        r = reach * max(h, w)
        x0, x1 = max(int(x - r), 0), min(int(x + r) + 1, w)
        y0, y1 = max(int(y - r), 0), min(int(y + r) + 1, h)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        out = np.zeros(self.shape, bool)
        out[y0:y1, x0:x1] = (comp[y0:y1, x0:x1] == comp[yi, xi]) & ((yy - y) ** 2 + (xx - x) ** 2 <= r * r)
        return out


def colour_proposal(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """A positive click's proposal where the segmentation model has none: the magic wand's colour
    region around the click (`core.interactive.wand`), within `COLOUR_REACH` of the long side.

    Why: on a pre-annotated frame most corrective clicks land where the model is sure of another
    class (38 of 48 measured on CamVid), so `SegEvidence.proposal` is empty there and the click
    network, whose output is a residual on its previous mask, added almost nothing (median 0.01x
    the object's area). A colour region is a start it can trim or grow."""
    from segstudio.core.interactive.wand import magic_wand

    h, w = image.shape[:2]
    reach = COLOUR_REACH * max(h, w)
    yy, xx = np.ogrid[:h, :w]
    region = magic_wand(image, x, y) & ((yy - y) ** 2 + (xx - x) ** 2 <= reach * reach)
    # texture leaves the wand's region full of holes and specks (seen in the window on a jacket)
    closed = cv2.morphologyEx(region.view(np.uint8), cv2.MORPH_CLOSE, _CLOSE).astype(bool)
    xi, yi = click_pixel((h, w), x, y)
    _n, comp = cv2.connectedComponents(closed.view(np.uint8), connectivity=8)
    return comp == comp[yi, xi] if comp[yi, xi] else region


_models: dict[tuple[str, float], Any] = {}
_lock = threading.Lock()


def segmentation_probabilities(checkpoint: str | Path, image: np.ndarray) -> np.ndarray:
    """C x H x W float32 class probabilities of `image` by the checkpoint (loaded once per file and
    modification time; CPU, float32, at the checkpoint's training resolution cap)."""
    from segstudio.ml.predict import Predictor
    from segstudio.ml.spec import ModelSpec
    from segstudio.ml.weights import load_checkpoint, load_model

    path = Path(checkpoint)
    key = (str(path.resolve()), path.stat().st_mtime)
    with _lock:
        predictor = _models.get(key)
        if predictor is None:
            scheme = load_checkpoint(path).scheme()
            if scheme is None:
                from segstudio.core.errors import CheckpointError

                raise CheckpointError(f"{path} has no class list: the click model needs a project checkpoint")
            loaded = load_model(ModelSpec(weights="file", path=str(path)), scheme, "cpu")
            predictor = Predictor.from_loaded(loaded, return_probabilities=True, precision="float32")
            _models[key] = predictor
    result = predictor.predict(np.ascontiguousarray(image[..., :3]))
    probs = np.asarray(result.probabilities, np.float32)
    h, w = image.shape[:2]
    if probs.shape[1:] != (h, w):
        probs = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])
    return probs
