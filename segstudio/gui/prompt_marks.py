"""Markers for the open smart-click object's prompts: green = positive click, red = negative."""

from __future__ import annotations

from PySide6.QtGui import QColor

from segstudio.gui.pg_loader import pg

__all__ = ["PromptMarks"]


class PromptMarks:
    def __init__(self, view: pg.ViewBox) -> None:
        self.item = pg.ScatterPlotItem(size=11, pxMode=True)
        self.item.setZValue(95)
        view.addItem(self.item, ignoreBounds=True)

    def show(self, positives: list[tuple[float, float]], negatives: list[tuple[float, float]]) -> None:
        spots = [{"pos": (x + 0.5, y + 0.5), "brush": QColor(40, 220, 70), "symbol": "o"} for x, y in positives]
        spots += [{"pos": (x + 0.5, y + 0.5), "brush": QColor(235, 50, 50), "symbol": "x"} for x, y in negatives]
        self.item.setData(spots, pen=pg.mkPen("w", width=1.5))
