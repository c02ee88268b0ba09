"""The overlay canvas: image, label overlay, confidence and diff layers, brush cursor.

The canvas only draws and forwards input (DESIGN.md): mouse positions are mapped to image
pixel coordinates and emitted as signals; `tools.ToolController` turns them into document
operations, and the document's change callback tells the canvas which box to redraw.

Why redraws stay cheap on 2048x1024: layers are `image_view.ArrayImageItem`s over the *live* uint8
arrays with a 256-entry colour table (an indexed QImage sharing the array's memory, no colour copy),
and a change only invalidates the changed rectangle of the scene, so Qt repaints just that part of
the viewport. Plain Qt Graphics View, no pyqtgraph: it kept ~0.16 s off start-up (image_view.py).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from segstudio.core.history import Box
from segstudio.core.schemes import UNLABELED
from segstudio.gui.image_view import DRAG_ZOOM, WHEEL_ZOOM, ArrayImageItem, ImageViewBox, ScreenText

__all__ = ["CanvasView", "LabelLayer", "diff_lut", "heat_lut", "outline_of", "outline_reach", "overlay_lut"]

MIN_CANVAS_WIDTH, MIN_CANVAS_HEIGHT = 360, 240


def overlay_lut(colors: np.ndarray, hidden: set[int] | frozenset[int] = frozenset()) -> np.ndarray:
    """(256, 4) RGBA: class colours opaque, unlabeled / unused / hidden indices transparent."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    n = min(len(colors), 254)
    lut[:n, :3] = colors[:n]
    lut[:n, 3] = 255
    for index in hidden:
        if 0 <= index < 256:
            lut[index, 3] = 0
    lut[UNLABELED, 3] = 0
    return lut


def heat_lut() -> np.ndarray:
    """Confidence 0..255 -> red (unsure, opaque) .. yellow .. transparent (sure)."""
    c = np.arange(256, dtype=np.float64) / 255.0
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, 0] = 255
    lut[:, 1] = np.clip(c * 2.0, 0, 1) * 230
    lut[:, 2] = 0
    lut[:, 3] = np.clip((1.0 - c) * 1.6, 0, 1) * 230
    return lut


def diff_lut() -> np.ndarray:
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1] = (255, 0, 255, 230)
    return lut


def outline_of(labels: np.ndarray, reach: int = 1) -> np.ndarray:
    """Labels kept only on region borders (elsewhere unlabeled), for the outline-only overlay.

    A border line is `2 * reach` image pixels wide (`reach` on each side of the edge); the
    presenter picks `reach` from the zoom so lines stay about two screen pixels wide.
    """
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    border = cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)
    return np.where(border, labels, np.uint8(UNLABELED)).astype(np.uint8)


def outline_reach(zoom: float, screen_px: float = 2.0, most: int = 8) -> int:
    """Image pixels each side of an edge so an outline is >= `screen_px` wide on screen at `zoom`."""
    if not math.isfinite(zoom) or zoom <= 0:
        return 1
    return max(1, min(most, math.ceil(screen_px / (2 * zoom))))


class LabelLayer:
    """A uint8 array drawn through a lookup table; redraws only the boxes it is told about."""

    def __init__(self, view: ImageViewBox, lut: np.ndarray, z: float) -> None:
        self.item = ArrayImageItem(lut)
        self.item.setZValue(z)
        view.addItem(self.item)
        self.array: np.ndarray | None = None

    def set_array(self, array: np.ndarray | None) -> None:
        self.array = array
        self.item.set_array(array)

    def set_lut(self, lut: np.ndarray) -> None:
        self.item.set_lut(lut)

    def update_region(self, box: Box | None) -> None:
        """The array changed in place inside `box` (None: anywhere); repaint just that."""
        if self.array is None:
            return
        if self.item.array is not self.array:  # drawn from a copy (not C-contiguous uint8): copy again
            self.item.set_array(self.array)
        elif box is None:
            self.item.update()
        else:
            self.item.update(QRectF(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0))

    def set_visible(self, visible: bool) -> None:
        self.item.setVisible(visible)

    @property
    def visible(self) -> bool:
        return self.item.isVisible()


class CanvasView(QGraphicsView):
    """Zoomable image with layers. Emits image-pixel coordinates (x, y as floats, pixel centres)."""

    pressed = Signal(float, float)  # left button down (not panning)
    dragged = Signal(float, float)  # left button moved while down
    released = Signal(float, float)
    hovered = Signal(float, float)  # mouse moved (any buttons); use for status bar and cursor
    left = Signal()
    brush_wheel = Signal(int)  # Ctrl+wheel steps (+ larger)
    secondary_pressed = Signal(float, float)  # right button, while `secondary_enabled` (negative clicks)
    polygon_finish = Signal()
    polygon_cancel = Signal()
    prompt_undo = Signal()  # Backspace: drop the latest smart click

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(40, 40, 40))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.vb = ImageViewBox(self.scene(), self)
        self.image_item = ArrayImageItem()
        self.image_item.setZValue(0)
        self.vb.addItem(self.image_item)
        self.overlay = LabelLayer(self.vb, overlay_lut(np.zeros((0, 3), np.uint8)), z=10)
        self.confidence = LabelLayer(self.vb, heat_lut(), z=20)
        self.diff = LabelLayer(self.vb, diff_lut(), z=30)
        self.confidence.set_visible(False)
        self.diff.set_visible(False)
        self.overlay.item.setOpacity(0.5)

        pen = QPen(QColor(255, 255, 255, 220))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        self.brush_cursor = QGraphicsEllipseItem()
        self.brush_cursor.setPen(pen)
        self.brush_cursor.setZValue(100)
        self.brush_cursor.setVisible(False)
        self.vb.addItem(self.brush_cursor, ignoreBounds=True)
        poly_pen = QPen(QColor(255, 255, 0))
        poly_pen.setCosmetic(True)
        poly_pen.setWidthF(2.0)
        self.polygon_item = QGraphicsPathItem()
        self.polygon_item.setPen(poly_pen)
        self.polygon_item.setZValue(90)
        self.vb.addItem(self.polygon_item, ignoreBounds=True)
        self.message = ScreenText("", color=(230, 230, 230))
        self.message.setZValue(110)
        self.vb.addItem(self.message, ignoreBounds=True)

        # At small window sizes the side panels shrink first: the canvas keeps a usable share.
        self.setMinimumSize(MIN_CANVAS_WIDTH, MIN_CANVAS_HEIGHT)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._painting = False
        self._space = False
        self._gesture: tuple[Qt.MouseButton, QPointF, QPointF] | None = None  # button, press, last position
        self.paint_enabled = True
        self.secondary_enabled = False  # right button: a tool action instead of the zoom drag
        self.brush_cursor_enabled = True
        self._tool_cursor: QCursor | None = None  # the tool's own pointer (fill, polygon); None = default
        self._busy = False  # a smart click is computing (`set_busy`)
        self._brush_radius = 5.0
        self._image_shape: tuple[int, int] | None = None

    def resizeEvent(self, ev: QResizeEvent) -> None:
        super().resizeEvent(ev)
        size = self.viewport().size()
        self.setSceneRect(0, 0, size.width(), size.height())  # scene = viewport pixels; the view box zooms
        self.vb.resize(size.width(), size.height())

    # -- content ---------------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self._image_shape

    def set_image(self, image: np.ndarray | None, message: str = "") -> None:
        """Show an RGB image (None clears and shows `message` instead)."""
        self.message.setText(message)
        if image is None:
            self.image_item.set_array(None)
            self._image_shape = None
            self.message.setPos(0, 0)
            self.vb.setRange(QRectF(-100, -100, 200, 200), padding=0)
            return
        first = self._image_shape != image.shape[:2]
        self._image_shape = image.shape[:2]
        self.image_item.set_array(image)
        if first:
            self.fit()

    def fit(self) -> None:
        if self._image_shape is not None:
            h, w = self._image_shape
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.01)

    def zoom_1to1(self) -> None:
        """One image pixel per screen pixel, keeping the view centre."""
        if self._image_shape is None:
            return
        (x0, x1), (y0, y1) = self.vb.viewRange()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = max(1.0, self.vb.width()), max(1.0, self.vb.height())
        self.vb.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2), padding=0)

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel."""
        (x0, x1), _ = self.vb.viewRange()
        return self.vb.width() / max(1e-6, x1 - x0)

    def view_state(self) -> list[float]:
        (x0, x1), (y0, y1) = self.vb.viewRange()
        return [x0, x1, y0, y1]

    def restore_view_state(self, state: list[float] | None) -> None:
        if state and len(state) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in state):
            self.vb.setRange(xRange=state[0:2], yRange=state[2:4], padding=0)

    # -- cursor / polygon ------------------------------------------------------------------------
    def set_brush_radius(self, radius: float) -> None:
        self._brush_radius = radius
        self._move_brush_cursor(self.brush_cursor.rect().center() if self.brush_cursor.isVisible() else None)

    def _move_brush_cursor(self, centre: QPointF | None) -> None:
        if centre is None or not self.brush_cursor_enabled or self._image_shape is None:
            self.brush_cursor.setVisible(False)
            return
        d = 2 * round(self._brush_radius) + 1  # the disc painted: radius r around the pixel
        self.brush_cursor.setRect(QRectF(centre.x() - d / 2, centre.y() - d / 2, d, d))
        self.brush_cursor.setVisible(True)

    def set_tool_cursor(self, cursor: QCursor | None) -> None:
        """The pointer over the image for the current tool (None: the default arrow)."""
        self._tool_cursor = cursor
        if not self._space:
            self._apply_cursor()

    def set_busy(self, busy: bool) -> None:
        """A smart click is computing: the pointer says so (clicking stays possible: they queue)."""
        self._busy = busy
        if not self._space:
            self._apply_cursor()

    def _apply_cursor(self) -> None:
        if self._busy:
            self.viewport().setCursor(Qt.CursorShape.BusyCursor)
        elif self._tool_cursor is None:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(self._tool_cursor)

    def set_polygon(
        self, points: list[tuple[float, float]], hover: tuple[float, float] | None = None, closed: bool = True
    ) -> None:
        """The yellow trail: a polygon or box (closed), or a scribble being drawn (`closed=False`: no
        segment from its end back to its start, which would read as a lasso)."""
        path = QPainterPath()
        pts = [*points, *([hover] if hover and points else [])]
        if pts:
            path.moveTo(pts[0][0] + 0.5, pts[0][1] + 0.5)
            for x, y in pts[1:]:
                path.lineTo(x + 0.5, y + 0.5)
            if closed and len(pts) > 2:
                path.closeSubpath()
        self.polygon_item.setPath(path)

    # -- coordinate mapping -------------------------------------------------------------------------
    def to_image(self, pos: QPointF | QPoint) -> tuple[float, float]:
        """Widget position -> image pixel coordinates (integers are pixel centres)."""
        scene = self.mapToScene(pos.toPoint() if isinstance(pos, QPointF) else pos)
        p = self.vb.mapSceneToView(scene)
        return p.x() - 0.5, p.y() - 0.5

    def to_widget(self, x: float, y: float) -> QPoint:
        """Image pixel (x, y) centre -> widget (viewport) position; used by tests and benchmarks."""
        scene = self.vb.mapViewToScene(QPointF(x + 0.5, y + 0.5))
        return self.mapFromScene(scene)

    # -- input -------------------------------------------------------------------------------------
    def _pan_gesture(self, ev: QMouseEvent) -> bool:
        return ev.button() != Qt.MouseButton.LeftButton or self._space or not self.paint_enabled

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        if (
            ev.button() == Qt.MouseButton.RightButton
            and self.secondary_enabled
            and self.paint_enabled
            and not self._space
            and self._image_shape is not None
        ):
            self.secondary_pressed.emit(*self.to_image(ev.position()))
            ev.accept()
            return
        if self._pan_gesture(ev) or self._image_shape is None:
            self._start_gesture(ev)
            return
        self.setFocus()
        self._painting = True
        x, y = self.to_image(ev.position())
        self.pressed.emit(x, y)
        ev.accept()

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        x, y = self.to_image(ev.position())
        self._move_brush_cursor(QPointF(round(x) + 0.5, round(y) + 0.5))
        self.hovered.emit(x, y)
        if self._painting:
            self.dragged.emit(x, y)
            ev.accept()
            return
        if self._gesture is not None:
            self._continue_gesture(ev.position())
            ev.accept()
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        if self._painting and ev.button() == Qt.MouseButton.LeftButton:
            self._painting = False
            x, y = self.to_image(ev.position())
            self.released.emit(x, y)
            ev.accept()
            return
        if self._gesture is not None and ev.button() == self._gesture[0]:
            self._gesture = None
            ev.accept()
            return
        super().mouseReleaseEvent(ev)

    # -- pan and zoom (what pyqtgraph's ViewBox did: left/middle drag pans, right drag zooms) ---------------
    def _view_point(self, pos: QPointF) -> QPointF:
        """Viewport position -> view coordinates (image pixel corners; `to_image` gives pixel centres)."""
        return self.vb.mapSceneToView(self.mapToScene(pos.toPoint()))

    def _start_gesture(self, ev: QMouseEvent) -> None:
        if ev.button() in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.RightButton,
        ):
            self._gesture = (ev.button(), QPointF(ev.position()), QPointF(ev.position()))
        ev.accept()

    def _continue_gesture(self, pos: QPointF) -> None:
        assert self._gesture is not None
        button, start, last = self._gesture
        self._gesture = (button, start, QPointF(pos))
        scale = self.vb.pixels_per_unit()
        if button == Qt.MouseButton.RightButton:  # drag down: zoom out, about the press point
            self.vb.scaleBy(DRAG_ZOOM ** (pos.y() - last.y()), center=self._view_point(start))
        else:  # the image follows the pointer
            self.vb.translateBy(-(pos.x() - last.x()) / scale, -(pos.y() - last.y()) / scale)

    def leaveEvent(self, ev) -> None:
        self.brush_cursor.setVisible(False)
        self.left.emit()
        super().leaveEvent(ev)

    def wheelEvent(self, ev: QWheelEvent) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = int(round(ev.angleDelta().y() / 120)) or (1 if ev.angleDelta().y() > 0 else -1)
            self.brush_wheel.emit(steps)
            ev.accept()
            return
        delta = ev.angleDelta().y() or ev.angleDelta().x()
        if delta:  # wheel up zooms in, about the pointer
            self.vb.scaleBy(WHEEL_ZOOM**-delta, center=self._view_point(ev.position()))
        ev.accept()

    def keyPressEvent(self, ev: QKeyEvent) -> None:
        key = ev.key()
        if key == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.polygon_finish.emit()
            return
        if key == Qt.Key.Key_Escape:
            self.polygon_cancel.emit()
            return
        if key == Qt.Key.Key_Backspace:
            self.prompt_undo.emit()
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: QKeyEvent) -> None:
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            self.unsetCursor()
            self._apply_cursor()
            return
        super().keyReleaseEvent(ev)
