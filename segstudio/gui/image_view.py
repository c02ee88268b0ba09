"""The canvas's drawing pieces on plain Qt Graphics View: arrays as images, a zoom/pan view, screen text.

Why not pyqtgraph here: importing it costs ~0.16 s of start-up even trimmed (gui.pg_loader), and the
editor uses a small part of it. This module keeps the behaviour the canvas had with pyqtgraph's
`ViewBox(lockAspect=True, invertY=True)` + `ImageItem`: a *target* rectangle that the view shows whole,
centred, at one scale for both axes (so a resize keeps the fitted image fitted); wheel zoom about the
pointer (1.02 per 1/8 of a wheel step); left/middle drag pans; right drag zooms about the press point.
pyqtgraph now loads only with the fine-tune window's curves.

An `ArrayImageItem` wraps the *live* uint8 array in a QImage without copying (2-D arrays through a
256-entry colour table), so an edit in place only needs `update(rect)`: Qt repaints that rectangle.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

__all__ = ["DRAG_ZOOM", "WHEEL_ZOOM", "ArrayImageItem", "ImageViewBox", "ScreenText"]

WHEEL_ZOOM = 1.02 ** (1 / 8)  # range factor per unit of angleDelta (one wheel step = 120 units, ~0.74x)
DRAG_ZOOM = 1.02  # range factor per pixel of right-button drag (down: zoom out)


def _color_table(lut: np.ndarray | None) -> list[int]:
    """(256, 4) RGBA uint8 -> QImage colour table (QRgb ints); None: grey ramp."""
    if lut is None:
        ramp = np.arange(256, dtype=np.uint32)
        return ((0xFF << 24) | (ramp << 16) | (ramp << 8) | ramp).tolist()
    rgba = np.zeros((256, 4), np.uint32)
    rgba[: len(lut)] = np.asarray(lut, np.uint8)[:256]
    return ((rgba[:, 3] << 24) | (rgba[:, 0] << 16) | (rgba[:, 1] << 8) | rgba[:, 2]).tolist()


class ArrayImageItem(QGraphicsItem):
    """A uint8 array (HxW through `lut`, HxWx3 RGB, HxWx4 RGBA), one array pixel per view unit.

    The QImage shares the array's memory; keep editing the same array and call `update(rect)`.
    """

    def __init__(self, lut: np.ndarray | None = None) -> None:
        super().__init__()
        self.setFlag(
            QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption
        )  # exposedRect: paint only that
        self.array: np.ndarray | None = None
        self.lut = lut
        self._colors = _color_table(lut)
        self._qimage: QImage | None = None

    def set_array(self, array: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self.array = None if array is None else np.ascontiguousarray(array, dtype=np.uint8)
        self.rebuild()

    def set_lut(self, lut: np.ndarray | None) -> None:
        self.lut = lut
        self._colors = _color_table(lut)
        if self._qimage is not None and self._qimage.format() == QImage.Format.Format_Indexed8:
            self._qimage.setColorTable(self._colors)
        self.update()

    def rebuild(self) -> None:
        """Wrap the array again (a new array, or a full re-render) and repaint all of it."""
        a = self.array
        if a is None:
            self._qimage = None
        else:
            h, w = a.shape[:2]
            if a.ndim == 2:
                image = QImage(a, w, h, a.strides[0], QImage.Format.Format_Indexed8)
                image.setColorTable(self._colors)
            elif a.shape[2] == 3:
                image = QImage(a, w, h, a.strides[0], QImage.Format.Format_RGB888)
            else:
                image = QImage(a, w, h, a.strides[0], QImage.Format.Format_RGBA8888)
            self._qimage = image
        self.update()

    def boundingRect(self) -> QRectF:
        if self.array is None:
            return QRectF()
        h, w = self.array.shape[:2]
        return QRectF(0, 0, w, h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._qimage is None:
            return
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        # Whole pixels, so neighbouring partial repaints meet without seams.
        src = QRectF(
            QPointF(math.floor(exposed.left()), math.floor(exposed.top())),
            QPointF(math.ceil(exposed.right()), math.ceil(exposed.bottom())),
        )
        painter.drawImage(src, self._qimage, src)


class ScreenText(QGraphicsSimpleTextItem):
    """Text centred on its position, at screen size whatever the zoom (pyqtgraph's TextItem, anchor 0.5)."""

    def __init__(self, text: str = "", color: tuple[int, int, int] = (230, 230, 230)) -> None:
        super().__init__()
        self.setBrush(QColor(*color))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        r = self.boundingRect()
        self.setTransform(QTransform.fromTranslate(-r.width() / 2, -r.height() / 2))


class ImageViewBox(QObject):
    """Zoom and pan over image coordinates (x right, y down), one scale for both axes.

    The view shows the whole *target* rectangle, centred, and more along one axis when the viewport's
    shape differs; `viewRange()` is what is actually visible. Items added with `addItem` live in image
    coordinates under `root`, whose transform maps them to the viewport (= scene) coordinates.
    """

    sigRangeChanged = Signal(object, object)  # (self, [[x0, x1], [y0, y1]]), as pyqtgraph's ViewBox

    def __init__(self, scene: QGraphicsScene, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root = QGraphicsRectItem()
        self.root.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        scene.addItem(self.root)
        self._target = QRectF(0, 0, 1, 1)
        self._size = (0.0, 0.0)
        self._scale = 1.0
        self._range = [[0.0, 1.0], [0.0, 1.0]]

    # -- geometry ----------------------------------------------------------------------------------------
    def width(self) -> float:
        return self._size[0]

    def height(self) -> float:
        return self._size[1]

    def resize(self, width: float, height: float) -> None:
        self._size = (float(width), float(height))
        self._apply()

    def addItem(self, item: QGraphicsItem, ignoreBounds: bool = False) -> None:
        item.setParentItem(self.root)

    def targetRect(self) -> QRectF:
        return QRectF(self._target)

    def viewRange(self) -> list[list[float]]:
        return [list(self._range[0]), list(self._range[1])]

    def setRange(
        self,
        rect: QRectF | None = None,
        xRange: tuple[float, float] | None = None,
        yRange: tuple[float, float] | None = None,
        padding: float = 0.0,
    ) -> None:
        """Show `rect` (or the given ranges; a missing one is kept), each side widened by `padding` x its size."""
        if rect is not None:
            xRange, yRange = (rect.left(), rect.right()), (rect.top(), rect.bottom())
        t = QRectF(self._target)
        if xRange is not None:
            x0, x1 = sorted(float(v) for v in xRange)
            pad = (x1 - x0) * (padding or 0.0)
            t.setLeft(x0 - pad)
            t.setRight(max(x1 + pad, x0 - pad + 1e-9))
        if yRange is not None:
            y0, y1 = sorted(float(v) for v in yRange)
            pad = (y1 - y0) * (padding or 0.0)
            t.setTop(y0 - pad)
            t.setBottom(max(y1 + pad, y0 - pad + 1e-9))
        self._target = t
        self._apply()

    def scaleBy(
        self,
        s: float | tuple[float, float] | None = None,
        center: QPointF | None = None,
        x: float | None = None,
        y: float | None = None,
    ) -> None:
        """Multiply the visible range by `s` (> 1: zoom out) about `center` (view coordinates; default: middle).

        One scale for both axes: a tuple or x/y with one factor left at 1 scales by the other one."""
        if s is None:
            s = (1.0 if x is None else x, 1.0 if y is None else y)
        if isinstance(s, (tuple, list)):
            sx, sy = (float(v) for v in s)
            s = sy if sx == 1.0 else sx
        (x0, x1), (y0, y1) = self._range
        cx, cy = ((x0 + x1) / 2, (y0 + y1) / 2) if center is None else (center.x(), center.y())
        self._target = QRectF(
            QPointF(cx + (x0 - cx) * s, cy + (y0 - cy) * s), QPointF(cx + (x1 - cx) * s, cy + (y1 - cy) * s)
        )
        self._apply()

    def translateBy(self, dx: float, dy: float) -> None:
        """Move the visible range by (dx, dy) view units."""
        (x0, x1), (y0, y1) = self._range
        self._target = QRectF(QPointF(x0 + dx, y0 + dy), QPointF(x1 + dx, y1 + dy))
        self._apply()

    def pixels_per_unit(self) -> float:
        return self._scale

    def mapSceneToView(self, point: QPointF) -> QPointF:
        return self.root.mapFromScene(QPointF(point))

    def mapViewToScene(self, point: QPointF) -> QPointF:
        return self.root.mapToScene(QPointF(point))

    def _apply(self) -> None:
        t = self._target
        w, h = self._size
        if w < 1 or h < 1:  # not laid out yet: show the target as it is
            scale, view = 1.0, QRectF(t)
        else:
            scale = min(w / max(t.width(), 1e-9), h / max(t.height(), 1e-9))
            c = t.center()
            view = QRectF(c.x() - w / scale / 2, c.y() - h / scale / 2, w / scale, h / scale)
        self._scale = scale
        self.root.setTransform(QTransform(scale, 0, 0, scale, -view.left() * scale, -view.top() * scale))
        new = [[view.left(), view.right()], [view.top(), view.bottom()]]
        if new != self._range:
            self._range = new
            self.sigRangeChanged.emit(self, self.viewRange())
