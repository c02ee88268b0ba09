"""Legend of the confidence layer: what its colours mean, over the canvas's bottom-left corner.

The heat map is drawn from `canvas.heat_lut`, so the legend paints the very same table: red
(opaque) = the model was unsure, through yellow, to clear = sure. Without it, a new user cannot
tell whether red means "good" or "check here".
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from segstudio.gui.canvas import heat_lut

__all__ = ["ConfidenceLegend"]


class ConfidenceLegend(QWidget):
    """A small bar "unsure ... sure" child of the canvas, kept in its corner when it resizes."""

    MARGIN = 10

    def __init__(self, canvas: QWidget) -> None:
        super().__init__(canvas)
        self.setObjectName("confidence_legend")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFixedSize(230, 44)
        lut = heat_lut()
        self._bar = QImage(256, 1, QImage.Format.Format_ARGB32)
        for x in range(256):
            r, g, b, a = (int(v) for v in lut[x])
            self._bar.setPixelColor(x, 0, QColor(r, g, b, a))
        self.setToolTip(
            "Confidence layer: the model's certainty per pixel. Red = unsure (check these "
            "areas first), yellow = fairly sure, no colour = sure."
        )
        canvas.installEventFilter(self)
        self.hide()
        self._place()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.move(self.MARGIN, parent.height() - self.height() - self.MARGIN)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 200))
        painter.drawRoundedRect(self.rect(), 6, 6)
        bar = QRect(10, 8, self.width() - 20, 12)
        painter.fillRect(bar, QColor(128, 128, 128))  # shows through where the layer is clear
        painter.drawImage(bar, self._bar)
        painter.setPen(QColor(235, 235, 235))
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        text = QRect(10, 22, self.width() - 20, self.height() - 24)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "unsure")
        painter.drawText(text, Qt.AlignmentFlag.AlignCenter, "confidence")
        painter.drawText(text, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "sure")
        painter.end()
