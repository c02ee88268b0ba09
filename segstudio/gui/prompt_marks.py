"""Markers for the open smart-click object's prompts: green dot = positive click, red cross = negative.

Drawn at a fixed screen size (11 px) whatever the zoom, on the canvas's view box (plain Qt items).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QPainterPath, QPen, QPolygonF, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from segstudio.gui.image_view import ImageViewBox

__all__ = ["MARK_SIZE", "PromptMarks"]

MARK_SIZE = 11  # screen pixels
POSITIVE, NEGATIVE = QColor(40, 220, 70), QColor(235, 50, 50)


def _dot() -> QPainterPath:
    path = QPainterPath()
    path.addEllipse(QPointF(0, 0), MARK_SIZE / 2, MARK_SIZE / 2)
    return path


def _cross() -> QPainterPath:
    """A plus of arm width 1/5 of the size, turned 45 degrees (an x)."""
    a, w = MARK_SIZE / 2, MARK_SIZE / 10
    plus = QPolygonF(
        [
            QPointF(x, y)
            for x, y in (
                (-a, -w),
                (-w, -w),
                (-w, -a),
                (w, -a),
                (w, -w),
                (a, -w),
                (a, w),
                (w, w),
                (w, a),
                (-w, a),
                (-w, w),
                (-a, w),
            )
        ]
    )
    path = QPainterPath()
    path.addPolygon(QTransform().rotate(45).map(plus))
    path.closeSubpath()
    return path


class PromptMarks:
    def __init__(self, view: ImageViewBox) -> None:
        self.view = view
        self.marks: list[QGraphicsPathItem] = []
        self._pen = QPen(QColor(255, 255, 255))
        self._pen.setWidthF(1.5)
        self._shapes = {True: _dot(), False: _cross()}

    def show(self, positives: list[tuple[float, float]], negatives: list[tuple[float, float]]) -> None:
        for item in self.marks:
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.marks = []
        for points, positive in ((positives, True), (negatives, False)):
            for x, y in points:
                item = QGraphicsPathItem(self._shapes[positive])
                item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
                item.setPen(self._pen)
                item.setBrush(POSITIVE if positive else NEGATIVE)
                item.setZValue(95)
                self.view.addItem(item, ignoreBounds=True)
                item.setPos(x + 0.5, y + 0.5)
                self.marks.append(item)
