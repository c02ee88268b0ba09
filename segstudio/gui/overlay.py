"""Binds the current `MaskDocument` to the canvas layers (overlay, outline, confidence, diff).

The document reports the box each edit changed; this presenter updates only that box of the
derived arrays (outline, diff) and asks the canvas to repaint only that box. The changed-pixel
fraction of the diff layer (edit effort) is recounted on a short timer, not on every dab.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.document import MaskDocument
from segstudio.core.history import Box
from segstudio.gui.canvas import CanvasView, outline_of, outline_reach, overlay_lut

__all__ = ["OverlayPresenter"]


class OverlayPresenter(QObject):
    diff_fraction_changed = Signal(object)  # float | None
    counts_changed = Signal(object)  # (256,) int64 | None

    def __init__(self, canvas: CanvasView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.document: MaskDocument | None = None
        self.colors = np.zeros((0, 3), np.uint8)
        self.hidden: frozenset[int] = frozenset()
        self.outline = False
        self.show_prediction = False
        self.opacity = 0.5
        self._outline: np.ndarray | None = None
        self._diff: np.ndarray | None = None
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(150)
        self._stats_timer.timeout.connect(self.recount)
        # Outline lines are re-thickened when the zoom settles (not on every wheel step).
        self.reach = 1
        self._zoom_timer = QTimer(self)
        self._zoom_timer.setSingleShot(True)
        self._zoom_timer.setInterval(120)
        self._zoom_timer.timeout.connect(self._zoom_settled)
        canvas.vb.sigRangeChanged.connect(lambda *_: self._zoom_timer.start() if self.outline else None)

    # -- inputs ------------------------------------------------------------------------------------------
    def set_document(
        self, document: MaskDocument | None, image: np.ndarray | None, message: str = ""
    ) -> None:
        if self.document is not None:
            self.document.remove_listener(self.on_change)
        self.document = document
        self.canvas.set_image(image, message)
        if document is not None:
            document.add_listener(self.on_change)
        self.rebuild()

    def set_colors(self, colors: np.ndarray, hidden: frozenset[int] | set[int] = frozenset()) -> None:
        self.colors = np.asarray(colors, np.uint8).reshape(-1, 3)
        self.hidden = frozenset(hidden)
        self.canvas.overlay.set_lut(overlay_lut(self.colors, self.hidden))

    def set_hidden(self, hidden: frozenset[int]) -> None:
        self.set_colors(self.colors, hidden)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = max(0.0, min(1.0, opacity))
        self.canvas.overlay.item.setOpacity(1.0 if self.outline else self.opacity)

    def set_overlay_visible(self, visible: bool) -> None:
        self.canvas.overlay.set_visible(visible)

    def set_outline(self, outline: bool) -> None:
        self.outline = outline
        self.rebuild()

    def set_show_prediction(self, show: bool) -> None:
        self.show_prediction = show
        self.rebuild()

    def set_confidence_visible(self, visible: bool) -> None:
        self.canvas.confidence.set_visible(visible)

    def set_diff_visible(self, visible: bool) -> None:
        self.canvas.diff.set_visible(visible)
        self.rebuild()

    # -- drawing -----------------------------------------------------------------------------------------
    def _source(self) -> np.ndarray | None:
        doc = self.document
        if doc is None:
            return None
        if self.show_prediction and doc.shown_prediction is not None:
            return doc.shown_prediction
        return doc.labels

    def rebuild(self) -> None:
        """Recompute every layer (new document, mode switch, new prediction)."""
        doc = self.document
        source = self._source()
        if source is None:
            for layer in (self.canvas.overlay, self.canvas.confidence, self.canvas.diff):
                layer.set_array(None)
            self._outline = self._diff = None
            self.recount()
            return
        if self.outline:
            self.reach = outline_reach(self.canvas.zoom_factor())
            self._outline = outline_of(source, self.reach)
            self.canvas.overlay.set_array(self._outline)
        else:
            self._outline = None
            self.canvas.overlay.set_array(source)
        # Outlines are thin: drawn opaque (whatever the fill opacity) so they read on any photo.
        self.canvas.overlay.item.setOpacity(1.0 if self.outline else self.opacity)
        self.canvas.confidence.set_array(doc.confidence if doc is not None else None)
        pred = doc.shown_prediction if doc is not None else None
        if pred is not None and self.canvas.diff.visible:
            self._diff = (doc.labels != pred).view(np.uint8)
            self.canvas.diff.set_array(self._diff)
        else:
            self._diff = None
            self.canvas.diff.set_array(None)
        self.recount()

    def on_change(self, box: Box | None) -> None:
        """The document changed inside `box`: refresh just that part of each layer."""
        doc = self.document
        if doc is None:
            return
        if box is None:
            self.rebuild()
            return
        if not self.show_prediction or doc.shown_prediction is None:
            if self._outline is not None:
                grown = box.expand(self.reach).clip(doc.shape)  # the pixels whose outline may change
                context = box.expand(2 * self.reach).clip(doc.shape)  # plus what they look at
                part = outline_of(doc.labels[context.slices], self.reach)
                dy, dx = grown.y0 - context.y0, grown.x0 - context.x0
                self._outline[grown.slices] = part[
                    dy : dy + grown.y1 - grown.y0, dx : dx + grown.x1 - grown.x0
                ]
                self.canvas.overlay.update_region(grown)
            else:
                self.canvas.overlay.update_region(box)
        pred = doc.shown_prediction
        if self._diff is not None and pred is not None:
            sl = box.slices
            self._diff[sl] = doc.labels[sl] != pred[sl]
            self.canvas.diff.update_region(box)
        if not self._stats_timer.isActive():  # a throttle, not a debounce: a wand drag never pauses
            self._stats_timer.start()

    def _zoom_settled(self) -> None:
        if self.outline and outline_reach(self.canvas.zoom_factor()) != self.reach:
            self.rebuild()

    def recount(self) -> None:
        doc = self.document
        if doc is None:
            self.diff_fraction_changed.emit(None)
            self.counts_changed.emit(None)
            return
        self.diff_fraction_changed.emit(doc.diff_fraction())
        self.counts_changed.emit(doc.class_counts())
