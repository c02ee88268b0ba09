"""The fine-tune window's live view: loss and val-mIoU curves over epochs and the per-class IoU table.

Why its own widget: the panel (settings, process, registration) stays wiring, and this part can be
tested by feeding it points. Curves use whole-epoch ticks, start with a fixed 0..epochs axis and a
hint instead of pyqtgraph's empty 0..1 axes, and are tall enough to read (a splitter lets the user
trade plot height for table rows); the table always lists every class of the scheme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QSplitter, QTableWidget, QTableWidgetItem, QWidget

from segstudio.gui.pg_loader import pg

__all__ = ["ClassIouTable", "TrainingCurves", "pct"]

PLOT_MIN_HEIGHT = 170


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _epoch_plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title)
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", y_label)
    plot.setMinimumHeight(PLOT_MIN_HEIGHT)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    return plot


class TrainingCurves(QSplitter):
    """Loss (per batch, at fractional epochs) above val mIoU in % (per epoch, 0 = the starting model)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.loss_plot = _epoch_plot("Training loss", "loss")
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen((220, 90, 40), width=1.5))
        self.miou_plot = _epoch_plot("Val mIoU", "%")
        self.miou_curve = self.miou_plot.plot(
            [], [], pen=pg.mkPen((40, 120, 220), width=2), symbol="o", symbolSize=6
        )
        self._hints = [
            pg.TextItem("curves appear when training starts", color=(130, 130, 130), anchor=(0.5, 0.5))
            for _ in range(2)
        ]
        for plot, hint in zip((self.loss_plot, self.miou_plot), self._hints):
            plot.addItem(hint)
            self.addWidget(plot)
        self.setChildrenCollapsible(False)
        self.reset(1)

    def reset(self, epochs: int) -> None:
        """Empty curves on a 0..epochs axis with whole-epoch ticks."""
        epochs = max(1, int(epochs))
        step = max(1, math.ceil(epochs / 10))
        self.loss_curve.setData([], [])
        self.miou_curve.setData([], [])
        for plot, hint, top in zip((self.loss_plot, self.miou_plot), self._hints, (1.0, 100.0)):
            plot.getAxis("bottom").setTickSpacing(step, step)
            plot.setXRange(0, epochs, padding=0.02)
            plot.setYRange(0, top, padding=0.02)
            hint.setPos(epochs / 2, top / 2)
            hint.setVisible(True)

    def set_loss(self, points: Sequence[tuple[float, float]]) -> None:
        self._hints[0].setVisible(not points)
        if points:
            self.loss_plot.enableAutoRange(axis="y")
        self.loss_curve.setData([p[0] for p in points], [p[1] for p in points])

    def set_miou(self, points: Sequence[tuple[float, float]]) -> None:
        self._hints[1].setVisible(not points)
        self.miou_curve.setData([p[0] for p in points], [100 * p[1] for p in points])


class ClassIouTable(QTableWidget):
    """Every class of the scheme with its IoU at the start and in the latest validation."""

    def __init__(self, class_names: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(len(class_names), 3, parent)
        self.class_names = list(class_names)
        self.setHorizontalHeaderLabels(["Class", "Val IoU", "Start"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setMinimumWidth(240)
        self.clear_values()

    def clear_values(self) -> None:
        for row, name in enumerate(self.class_names):
            self.setItem(row, 0, QTableWidgetItem(name))
            for column in (1, 2):
                self.setItem(row, column, QTableWidgetItem("—"))

    def show_ious(self, per_class: dict[str, float | None], start: bool = False) -> None:
        """One validation's IoUs; classes it does not name (or names with no pixels) show n/a."""
        known = {str(k).casefold(): v for k, v in per_class.items()}
        extra = [
            str(n) for n in per_class if str(n).casefold() not in {c.casefold() for c in self.class_names}
        ]
        if extra:  # a run on another scheme: list its classes too rather than hide them
            self.class_names += extra
            self.setRowCount(len(self.class_names))
            for row in range(len(self.class_names) - len(extra), len(self.class_names)):
                self.setItem(row, 0, QTableWidgetItem(self.class_names[row]))
                self.setItem(row, 2, QTableWidgetItem("—"))
        for row, name in enumerate(self.class_names):
            self.setItem(row, 1 if not start else 2, QTableWidgetItem(pct(known.get(name.casefold()))))
            if start:
                self.setItem(row, 1, QTableWidgetItem(pct(known.get(name.casefold()))))
