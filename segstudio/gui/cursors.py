"""Pointers of the fill and polygon tools, drawn at run time (no image files to ship or lose).

Why own cursors: with the default arrow a user cannot tell which tool a click will use, and
the arrow's tip hides the pixel it acts on. The fill pointer is a bucket whose pouring drop
is the hot spot; the polygon pointer is a thin cross with a small polygon glyph beside it.
Each is drawn white over a dark outline so it reads on light and dark photos.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

__all__ = ["fill_cursor", "polygon_cursor"]

SIZE = 32


def _stroke(painter: QPainter, path: QPainterPath) -> None:
    """Dark halo, then the white line: visible on any background."""
    for color, width in ((QColor(0, 0, 0, 220), 3.2), (QColor(255, 255, 255), 1.4)):
        pen = QPen(color, width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.drawPath(path)


def _canvas() -> tuple[QPixmap, QPainter]:
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pixmap, painter


def fill_cursor() -> QCursor:
    """A tipped bucket pouring onto the hot spot (bottom-left drop)."""
    pixmap, painter = _canvas()
    bucket = QPainterPath()
    bucket.addPolygon(QPolygonF([QPointF(12, 4), QPointF(26, 14), QPointF(19, 25), QPointF(6, 16)]))
    bucket.closeSubpath()
    bucket.moveTo(12, 4)
    bucket.cubicTo(QPointF(16, 0), QPointF(24, 6), QPointF(26, 14))  # handle
    _stroke(painter, bucket)
    drop = QPainterPath()
    drop.moveTo(6, 16)
    drop.cubicTo(QPointF(2, 20), QPointF(1, 25), QPointF(3, 29))
    _stroke(painter, drop)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 255, 255))
    painter.drawEllipse(QPointF(3, 29), 2.2, 2.2)
    painter.end()
    return QCursor(pixmap, 3, 29)


def polygon_cursor() -> QCursor:
    """A cross (hot spot at its centre) with a small polygon glyph at the lower right."""
    pixmap, painter = _canvas()
    cross = QPainterPath()
    for a, b in (((8, 1), (8, 6)), ((8, 10), (8, 15)), ((1, 8), (6, 8)), ((10, 8), (15, 8))):
        cross.moveTo(*a)
        cross.lineTo(*b)
    _stroke(painter, cross)
    glyph = QPainterPath()
    glyph.addPolygon(QPolygonF([QPointF(17, 18), QPointF(29, 16), QPointF(27, 29), QPointF(19, 27)]))
    glyph.closeSubpath()
    _stroke(painter, glyph)
    painter.end()
    return QCursor(pixmap, 8, 8)
