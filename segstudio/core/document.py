"""The mask being edited: label array, prediction layer, dirty flag, undo, change callbacks.

Widgets never touch the label array directly; they call these operations and redraw the box
each change callback reports. Every operation is a plain numpy/OpenCV function of its inputs,
so paint, fill and undo are tested without Qt (DESIGN.md, napari's labels layer).

Editing model:
- `begin_stroke()` ... `end_stroke()` groups any number of operations into one undo step (one
  drag); operations called outside a stroke are a step each.
- `Protect` restricts which existing pixels an operation may overwrite (only unlabeled pixels,
  or only one chosen class), so a quick brush never eats a finished neighbour.
- The prediction layer is separate from the labels: a prediction that arrives late lands there
  and never overwrites the user's pixels; `accept_prediction()` copies it in as one undo step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from segstudio.core.history import Box, History, Step, make_atom
from segstudio.core.schemes import UNLABELED

__all__ = ["UNLABELED", "Box", "MaskDocument", "Protect", "ProtectMode"]

Point = tuple[float, float]  # (x, y) in image pixel coordinates


class ProtectMode(str, Enum):
    NONE = "none"
    UNLABELED_ONLY = "unlabeled"  # paint only where nothing is labelled yet
    CLASS_ONLY = "class"  # paint only over pixels of `Protect.target`


@dataclass(frozen=True)
class Protect:
    """Which existing pixels an edit may change."""

    mode: ProtectMode = ProtectMode.NONE
    target: int = UNLABELED

    @classmethod
    def none(cls) -> Protect:
        return cls(ProtectMode.NONE)

    @classmethod
    def unlabeled_only(cls) -> Protect:
        return cls(ProtectMode.UNLABELED_ONLY, UNLABELED)

    @classmethod
    def only_class(cls, index: int) -> Protect:
        return cls(ProtectMode.CLASS_ONLY, int(index))

    def allowed(self, current: np.ndarray) -> np.ndarray | None:
        """Boolean mask of writable pixels in `current`, or None when everything is writable."""
        if self.mode == ProtectMode.NONE:
            return None
        if self.mode == ProtectMode.UNLABELED_ONLY:
            return current == UNLABELED
        return current == self.target


ChangeCallback = Callable[[Box | None], None]


class MaskDocument:
    """One image's label array with its history; `labels` is HxW uint8, 255 = unlabeled."""

    def __init__(
        self,
        labels: np.ndarray,
        history: History | None = None,
        *,
        prediction: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        raw_prediction: np.ndarray | None = None,
    ) -> None:
        if labels.ndim != 2:
            raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
        self._labels = np.ascontiguousarray(labels, dtype=np.uint8)
        self.history = history if history is not None else History()
        self._listeners: list[ChangeCallback] = []
        self._prediction_listeners: list[Callable[[], None]] = []
        self._before: np.ndarray | None = None  # snapshot taken at begin_stroke
        self._stroke_box: Box | None = None
        self._stroke_label = ""
        self.dirty = False
        #: True once the user changed pixels in this document (drives new/predicted -> in_progress).
        self.edited = False
        self.prediction: np.ndarray | None = None
        self.confidence: np.ndarray | None = None
        self.raw_prediction: np.ndarray | None = None
        self.use_raw_prediction = False
        if prediction is not None:
            self.set_prediction(prediction, confidence, raw_prediction, notify=False)

    # -- basic state -------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        """The live label array (read it; change it only through this class)."""
        return self._labels

    @property
    def shape(self) -> tuple[int, int]:
        return self._labels.shape  # type: ignore[return-value]

    def add_listener(self, callback: ChangeCallback) -> None:
        """`callback(box)` after every change of `labels`; box None means "everything"."""
        self._listeners.append(callback)

    def remove_listener(self, callback: ChangeCallback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def add_prediction_listener(self, callback: Callable[[], None]) -> None:
        self._prediction_listeners.append(callback)

    def mark_saved(self) -> None:
        self.dirty = False

    def class_counts(self) -> np.ndarray:
        """(256,) int64 pixel count per mask value."""
        return np.bincount(self._labels.ravel(), minlength=256)

    def _changed(self, box: Box | None) -> None:
        self.dirty = True
        self.edited = True
        for callback in list(self._listeners):
            callback(box)

    # -- strokes / steps -----------------------------------------------------------------------
    @property
    def in_stroke(self) -> bool:
        return self._before is not None

    def begin_stroke(self, label: str = "stroke") -> None:
        """Start one undo step; every edit until `end_stroke()` is undone together."""
        if self._before is not None:
            self.end_stroke()
        self._before = self._labels.copy()
        self._stroke_box = None
        self._stroke_label = label

    def end_stroke(self) -> bool:
        """Close the step; returns True when it changed pixels (and was recorded)."""
        before, box = self._before, self._stroke_box
        self._before, self._stroke_box = None, None
        if before is None or box is None or box.empty:
            return False
        atom = make_atom(before, self._labels, box)
        if atom is None:
            return False
        self.history.push(Step((atom,), self._stroke_label))
        return True

    def cancel_stroke(self) -> None:
        """Abandon the stroke in progress, restoring its pixels."""
        before, box = self._before, self._stroke_box
        self._before, self._stroke_box = None, None
        if before is not None and box is not None and not box.empty:
            self._labels[box.slices] = before[box.slices]
            self._changed(box)

    def _apply(self, box: Box, stamp: np.ndarray, value: int, protect: Protect, label: str) -> Box | None:
        """Write `value` where `stamp` (a bool/uint8 array the size of `box`) is set and protect allows."""
        if box.empty:
            return None
        own_step = self._before is None
        if own_step:
            self.begin_stroke(label)
        region = self._labels[box.slices]
        where = stamp.astype(bool, copy=False)
        allowed = protect.allowed(region)
        if allowed is not None:
            where = where & allowed
        where &= region != value
        changed = bool(where.any())
        if changed:
            region[where] = value
            self._stroke_box = box if self._stroke_box is None else self._stroke_box.union(box)
            self._changed(box)
        if own_step:
            self.end_stroke()
        return box if changed else None

    # -- operations ------------------------------------------------------------------------------
    def paint_stroke(
        self, points: Sequence[Point], radius: float, value: int, protect: Protect | None = None
    ) -> Box | None:
        """Paint a round brush along the polyline `points` (consecutive mouse positions).

        Segments are drawn as thick lines with round caps, so a fast drag whose events are far
        apart leaves no gaps. Returns the changed box (None if nothing changed).
        """
        if not points:
            return None
        r = max(0, int(round(radius)))
        pts = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        x0, y0 = pts.min(axis=0) - r
        x1, y1 = pts.max(axis=0) + r + 1
        box = Box(int(y0), int(x0), int(y1), int(x1)).clip(self.shape)
        if box.empty:
            return None
        stamp = np.zeros((box.y1 - box.y0, box.x1 - box.x0), dtype=np.uint8)
        local = pts - np.array([box.x0, box.y0], dtype=np.int32)
        for p in local:
            cv2.circle(stamp, (int(p[0]), int(p[1])), r, 1, thickness=-1)
        for a, b in itertools.pairwise(local):
            cv2.line(stamp, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, thickness=2 * r + 1)
        return self._apply(box, stamp, int(value), protect or Protect.none(), "brush")

    def flood_fill(self, x: float, y: float, value: int, protect: Protect | None = None) -> Box | None:
        """Fill the 4-connected region of the clicked pixel's label with `value`."""
        h, w = self.shape
        xi, yi = int(x), int(y)
        if not (0 <= xi < w and 0 <= yi < h):
            return None
        mask = np.zeros((h + 2, w + 2), dtype=np.uint8)
        flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
        _, _, _, rect = cv2.floodFill(self._labels, mask, (xi, yi), 0, 0, 0, flags)
        rx, ry, rw, rh = rect
        box = Box(ry, rx, ry + rh, rx + rw)
        stamp = mask[1 + box.y0 : 1 + box.y1, 1 + box.x0 : 1 + box.x1]
        return self._apply(box, stamp, int(value), protect or Protect.none(), "fill")

    def fill_polygon(self, points: Sequence[Point], value: int, protect: Protect | None = None) -> Box | None:
        """Fill the polygon through `points` (at least 3 vertices)."""
        if len(points) < 3:
            return None
        pts = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0) + 1
        box = Box(int(y0), int(x0), int(y1), int(x1)).clip(self.shape)
        if box.empty:
            return None
        stamp = np.zeros((box.y1 - box.y0, box.x1 - box.x0), dtype=np.uint8)
        cv2.fillPoly(stamp, [pts - np.array([box.x0, box.y0], dtype=np.int32)], 1)
        return self._apply(box, stamp, int(value), protect or Protect.none(), "polygon")

    def apply_region(
        self, region: np.ndarray, value: int, protect: Protect | None = None, label: str = "region"
    ) -> Box | None:
        """Write `value` where the boolean HxW `region` is set (an interactive tool's result)."""
        if region.shape != self.shape:
            raise ValueError(f"region shape {region.shape} does not match mask {self.shape}")
        if not region.any():
            return None
        x, y, w, h = cv2.boundingRect(
            region.view(np.uint8) if region.dtype == bool else region.astype(np.uint8)
        )
        box = Box(y, x, y + h, x + w)
        return self._apply(box, region[box.slices], int(value), protect or Protect.none(), label)

    def replace_class(self, old: int, new: int) -> Box | None:
        """Every pixel of class `old` becomes `new` (one undo step)."""
        where = self._labels == old
        if old == new or not where.any():
            return None
        x, y, w, h = cv2.boundingRect(where.view(np.uint8))
        box = Box(y, x, y + h, x + w)
        return self._apply(box, where[box.slices], int(new), Protect.none(), "replace")

    def set_labels(self, labels: np.ndarray, label: str = "set") -> Box | None:
        """Replace the whole mask as one undo step (e.g. a mask imported from disk)."""
        if labels.shape != self.shape:
            raise ValueError(f"mask shape {labels.shape} does not match image {self.shape}")
        own_step = self._before is None
        if own_step:
            self.begin_stroke(label)
        box = Box(0, 0, *self.shape)
        changed = not np.array_equal(self._labels, labels)
        if changed:
            np.copyto(self._labels, labels.astype(np.uint8, copy=False))
            self._stroke_box = box
            self._changed(box)
        if own_step:
            self.end_stroke()
        return box if changed else None

    def reset(self, labels: np.ndarray) -> None:
        """Show other initial content (e.g. a prediction that arrived before any edit).

        Not an edit: no undo step, no dirty flag. Only for documents the user has not touched.
        """
        if labels.shape != self.shape:
            raise ValueError(f"mask shape {labels.shape} does not match image {self.shape}")
        np.copyto(self._labels, labels.astype(np.uint8, copy=False))
        for callback in list(self._listeners):
            callback(None)

    # -- prediction layer ------------------------------------------------------------------------
    def set_prediction(
        self,
        labels: np.ndarray,
        confidence: np.ndarray | None = None,
        raw_labels: np.ndarray | None = None,
        notify: bool = True,
    ) -> None:
        """Store a model prediction beside the labels; never changes the user's pixels."""
        if labels.shape != self.shape:
            raise ValueError(f"prediction shape {labels.shape} does not match mask {self.shape}")
        self.prediction = np.asarray(labels, dtype=np.uint8)
        self.confidence = None if confidence is None else np.asarray(confidence, dtype=np.uint8)
        self.raw_prediction = None if raw_labels is None else np.asarray(raw_labels, dtype=np.uint8)
        if notify:
            for callback in list(self._prediction_listeners):
                callback()

    @property
    def shown_prediction(self) -> np.ndarray | None:
        """The prediction after CRF, or before it when `use_raw_prediction` is set and available."""
        if self.use_raw_prediction and self.raw_prediction is not None:
            return self.raw_prediction
        return self.prediction

    def accept_prediction(self) -> Box | None:
        """Copy the (shown) prediction into the labels as one undo step."""
        pred = self.shown_prediction
        if pred is None:
            return None
        return self.set_labels(pred, "accept prediction")

    def diff_fraction(self) -> float | None:
        """Fraction of pixels where the labels differ from the prediction (the edit effort)."""
        pred = self.shown_prediction
        if pred is None:
            return None
        return float(np.count_nonzero(self._labels != pred)) / float(self._labels.size)

    # -- undo ------------------------------------------------------------------------------------
    def undo(self) -> Box | None:
        if self._before is not None:
            self.end_stroke()
        step = self.history.undo(self._labels)
        if step is None:
            return None
        box = step.box
        self._changed(box)
        return box

    def redo(self) -> Box | None:
        if self._before is not None:
            self.end_stroke()
        step = self.history.redo(self._labels)
        if step is None:
            return None
        box = step.box
        self._changed(box)
        return box
