"""Editing tools: brush, eraser, flood fill, polygon, the smart tools, and the protect mode.

`ToolState` is the current tool, brush size, protect mode and active class (one QObject, so
toolbar buttons, shortcuts and the canvas cursor stay in sync through its `changed` signal).
`ToolController` turns canvas pixel coordinates into `MaskDocument` operations: a press opens
one undo step, each drag event paints the segment from the previous position (so fast drags
leave no gaps), release closes the step. Smart click, box, scribble, magic wand and superpixel
brush are forwarded to `smart_tools.SmartTools`. Polygon vertices stay editable until Enter:
drag a vertex to move it, press on an edge to insert one there, right-click a vertex to delete it.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QToolBar, QWidget

from segstudio.core.document import UNLABELED, MaskDocument, Protect, ProtectMode
from segstudio.core.effort import action_key
from segstudio.core.interactive.polygon import pick_edge, pick_vertex
from segstudio.core.interactive.wand import DEFAULT_TOLERANCE
from segstudio.gui.smart_tools import SmartTools

__all__ = ["MAX_BRUSH", "MIN_BRUSH", "Tool", "ToolController", "ToolOptionsBar", "ToolState"]

MIN_BRUSH = 1
MAX_BRUSH = 512


class Tool(str, Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    POLYGON = "polygon"
    CLICK = "click"
    BOX = "box"
    SCRIBBLE = "scribble"
    WAND = "wand"
    SUPERPIXEL = "superpixel"


SMART = (Tool.CLICK, Tool.BOX, Tool.SCRIBBLE, Tool.WAND, Tool.SUPERPIXEL)
SESSION = (Tool.CLICK, Tool.BOX, Tool.SCRIBBLE)  # tools that refine one object until accepted
VERTEX_PICK = 6.0  # image pixels: how near a press must be to grab a polygon vertex or edge


class ToolState(QObject):
    """What the next click does."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tool = Tool.BRUSH
        self._size = 15  # brush diameter in image pixels
        self._protect_mode = ProtectMode.NONE
        self._protect_class = 0
        self._active_class = 0
        self._engine = "superpixel"
        self.wand_tolerance = float(DEFAULT_TOLERANCE)

    @property
    def engine(self) -> str:
        """The smart click/box/scribble engine (core.interactive.engines)."""
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value and value != self._engine:
            self._engine = str(value)
            self.changed.emit()

    @property
    def tool(self) -> Tool:
        return self._tool

    @tool.setter
    def tool(self, value: Tool | str) -> None:
        value = Tool(value)
        if value != self._tool:
            self._tool = value
            self.changed.emit()

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        value = max(MIN_BRUSH, min(MAX_BRUSH, int(value)))
        if value != self._size:
            self._size = value
            self.changed.emit()

    @property
    def radius(self) -> float:
        return (self._size - 1) / 2.0

    def grow(self, steps: int) -> None:
        """`[`/`]` and Ctrl+wheel: about 15 % per step, at least one pixel."""
        size = self._size
        for _ in range(abs(steps)):
            delta = max(1, round(size * 0.15))
            size = size + delta if steps > 0 else size - delta
        self.size = size

    @property
    def active_class(self) -> int:
        return self._active_class

    @active_class.setter
    def active_class(self, value: int) -> None:
        if value != self._active_class:
            self._active_class = int(value)
            self.changed.emit()

    @property
    def protect_mode(self) -> ProtectMode:
        return self._protect_mode

    @protect_mode.setter
    def protect_mode(self, value: ProtectMode | str) -> None:
        value = ProtectMode(value)
        if value != self._protect_mode:
            self._protect_mode = value
            self.changed.emit()

    @property
    def protect_class(self) -> int:
        return self._protect_class

    @protect_class.setter
    def protect_class(self, value: int) -> None:
        if value != self._protect_class:
            self._protect_class = int(value)
            self.changed.emit()

    def cycle_protect(self) -> None:
        order = [ProtectMode.NONE, ProtectMode.UNLABELED_ONLY, ProtectMode.CLASS_ONLY]
        self.protect_mode = order[(order.index(self._protect_mode) + 1) % len(order)]

    def protect(self) -> Protect:
        if self._protect_mode == ProtectMode.UNLABELED_ONLY:
            return Protect.unlabeled_only()
        if self._protect_mode == ProtectMode.CLASS_ONLY:
            return Protect.only_class(self._protect_class)
        return Protect.none()

    def to_dict(self) -> dict:
        return {
            "tool": self._tool.value,
            "size": self._size,
            "protect": self._protect_mode.value,
            "protect_class": self._protect_class,
            "class": self._active_class,
            "engine": self._engine,
            "wand_tolerance": self.wand_tolerance,
        }

    def restore(self, data: dict | None) -> None:
        if not isinstance(data, dict):
            return
        try:
            self.tool = Tool(data.get("tool", self._tool))
            self.size = int(data.get("size", self._size))
            self.protect_mode = ProtectMode(data.get("protect", self._protect_mode))
            self.protect_class = int(data.get("protect_class", self._protect_class))
            self.active_class = int(data.get("class", self._active_class))
            from segstudio.gui.smart_tools import LAZY_ENGINES, registered_engines

            if data.get("engine") in registered_engines() | set(LAZY_ENGINES):
                self.engine = data["engine"]
            self.wand_tolerance = float(data.get("wand_tolerance", self.wand_tolerance))
        except (ValueError, TypeError):
            pass  # a stale or hand-edited setting is not worth an error dialog


class ToolController(QObject):
    """Applies the current tool to the current document from canvas coordinates."""

    polygon_changed = Signal(list)  # vertices in image coordinates
    edited = Signal()  # an undo step was recorded
    action = Signal(str)  # a user action (press) with this tool: effort telemetry

    def __init__(self, state: ToolState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.document: MaskDocument | None = None
        self._last: tuple[float, float] | None = None
        self.polygon: list[tuple[float, float]] = []
        self._vertex: int | None = None  # polygon vertex being dragged
        self.smart = SmartTools(state, self)
        self.smart.edited.connect(self.edited)
        self.smart.outline.connect(self.polygon_changed)
        self._class, self._tool = state.active_class, state.tool
        state.changed.connect(self._state_changed)

    def set_document(self, document: MaskDocument | None, image: np.ndarray | None = None) -> None:
        self.finish_stroke()
        self.cancel_polygon()
        self.document = document
        self.smart.set_document(document, image)

    def _state_changed(self) -> None:
        """Another class or tool accepts the object being clicked (it "moves on"). Another class waits
        for the clicks still computing (they were made for this object); another tool drops them."""
        if self.state.tool != self._tool:
            self.smart.settle()
        elif self.state.active_class != self._class:
            self.smart.accept()
        if self.state.engine not in self.smart.engines:
            self.smart.engine_changed()
        self._class, self._tool = self.state.active_class, self.state.tool

    def _action_key(self) -> str:
        """Effort telemetry's name for a press: the click tools carry their engine (``click:sam``)."""
        tool = self.state.tool
        return action_key(tool.value, self.state.engine if tool in SESSION else None)

    def _value(self) -> int:
        return UNLABELED if self.state.tool == Tool.ERASER else self.state.active_class

    # -- canvas events ---------------------------------------------------------------------------
    def press(self, x: float, y: float, positive: bool = True) -> None:
        """Left button (`positive`); Shift+left or the right button for negative clicks."""
        doc = self.document
        if doc is None:
            return
        tool = self.state.tool
        self.action.emit(self._action_key())
        if tool in SMART:
            self.smart.press(tool.value, x, y, positive)
        elif tool in (Tool.BRUSH, Tool.ERASER):
            doc.begin_stroke(tool.value)
            self._last = (x, y)
            doc.paint_stroke([(x, y)], self.state.radius, self._value(), self.state.protect())
        elif tool == Tool.FILL:
            if doc.flood_fill(x + 0.5, y + 0.5, self.state.active_class, self.state.protect()) is not None:
                self.edited.emit()
        elif tool == Tool.POLYGON:
            self._polygon_press(x, y)

    def secondary_press(self, x: float, y: float) -> None:
        """Right button: a negative click, or delete the polygon vertex under it."""
        if self.document is not None:
            self.action.emit(self._action_key())
        if self.state.tool in (Tool.CLICK, Tool.BOX, Tool.SCRIBBLE):
            self.smart.click(x, y, positive=False)
        elif self.state.tool == Tool.POLYGON:
            i = pick_vertex(self.polygon, x, y, VERTEX_PICK)
            if i is not None:
                del self.polygon[i]
                self.polygon_changed.emit(list(self.polygon))

    def accept(self) -> None:
        """Enter: fill the polygon, or accept the object being clicked."""
        if self.state.tool == Tool.POLYGON:
            self.finish_polygon()
        else:
            self.smart.accept()

    def undo_prompt(self) -> None:
        """Backspace: drop the latest click of the object being clicked."""
        if self.state.tool in SESSION:
            self.smart.undo_prompt()

    def cancel(self) -> None:
        """Escape: drop the polygon or the object being clicked."""
        self.cancel_polygon()
        self.smart.cancel()

    def _polygon_press(self, x: float, y: float) -> None:
        i = pick_vertex(self.polygon, x, y, VERTEX_PICK)
        if i is None and len(self.polygon) >= 3:
            edge = pick_edge(self.polygon, x, y, VERTEX_PICK / 2)
            if edge is not None:
                i = edge + 1
                self.polygon.insert(i, (x, y))
        if i is None:
            self.polygon.append((x, y))
        else:
            self._vertex = i
        self.polygon_changed.emit(list(self.polygon))

    def drag(self, x: float, y: float) -> None:
        doc = self.document
        if self.state.tool in SMART:
            self.smart.drag(self.state.tool.value, x, y)
            return
        if self._vertex is not None and self._vertex < len(self.polygon):
            self.polygon[self._vertex] = (x, y)
            self.polygon_changed.emit(list(self.polygon))
            return
        if doc is None or self._last is None:
            return
        doc.paint_stroke([self._last, (x, y)], self.state.radius, self._value(), self.state.protect())
        self._last = (x, y)

    def release(self, x: float, y: float) -> None:
        self._vertex = None
        if self.state.tool in SMART:
            self.smart.release(self.state.tool.value, x, y)
            return
        if self._last is not None:
            self.drag(x, y)
        self.finish_stroke()

    def finish_stroke(self) -> None:
        if self._last is None:
            return
        self._last = None
        if self.document is not None and self.document.end_stroke():
            self.edited.emit()

    def finish_polygon(self) -> None:
        doc = self.document
        points, self.polygon = self.polygon, []
        self.polygon_changed.emit([])
        if doc is not None and len(points) >= 3:
            if doc.fill_polygon(points, self.state.active_class, self.state.protect()) is not None:
                self.edited.emit()

    def cancel_polygon(self) -> None:
        if self.polygon:
            self.polygon = []
            self.polygon_changed.emit([])


class ToolOptionsBar(QToolBar):
    """Brush size and protect mode widgets bound both ways to a `ToolState`."""

    def __init__(self, state: ToolState, parent: QWidget | None = None) -> None:
        super().__init__("Tool options", parent)
        self.setObjectName("tool_options")
        self.state = state
        self.size_spin = QSpinBox(self)
        self.size_spin.setRange(MIN_BRUSH, MAX_BRUSH)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush diameter in image pixels ([ and ], or Ctrl+wheel)")
        self.protect_combo = QComboBox(self)
        self.protect_combo.addItem("Paint over anything", ProtectMode.NONE.value)
        self.protect_combo.addItem("Paint only unlabeled", ProtectMode.UNLABELED_ONLY.value)
        self.protect_combo.addItem("Paint only over class…", ProtectMode.CLASS_ONLY.value)
        self.protect_class_combo = QComboBox(self)
        self.protect_class_combo.setToolTip("The only class the tools may overwrite")
        self.addWidget(QLabel(" Size ", self))
        self.addWidget(self.size_spin)
        self.addSeparator()
        self.addWidget(QLabel(" Protect ", self))
        self.addWidget(self.protect_combo)
        self.addWidget(self.protect_class_combo)
        self.size_spin.valueChanged.connect(lambda v: setattr(state, "size", v))
        self.protect_combo.currentIndexChanged.connect(
            lambda i: setattr(state, "protect_mode", self.protect_combo.itemData(i))
        )
        self.protect_class_combo.currentIndexChanged.connect(self._protect_class_picked)
        state.changed.connect(self.sync)
        self.sync()

    def set_class_names(self, names: list[str]) -> None:
        self.protect_class_combo.blockSignals(True)
        self.protect_class_combo.clear()
        for index, name in enumerate(names):
            self.protect_class_combo.addItem(name, index)
        self.protect_class_combo.blockSignals(False)
        self.sync()

    def _protect_class_picked(self, i: int) -> None:
        if i >= 0:
            self.state.protect_class = int(self.protect_class_combo.itemData(i))

    def sync(self) -> None:
        """Model -> widgets, with signals blocked so nothing echoes back."""
        for widget in (self.size_spin, self.protect_combo, self.protect_class_combo):
            widget.blockSignals(True)
        self.size_spin.setValue(self.state.size)
        self.protect_combo.setCurrentIndex(self.protect_combo.findData(self.state.protect_mode.value))
        index = self.protect_class_combo.findData(self.state.protect_class)
        if index >= 0:
            self.protect_class_combo.setCurrentIndex(index)
        self.protect_class_combo.setEnabled(self.state.protect_mode == ProtectMode.CLASS_ONLY)
        for widget in (self.size_spin, self.protect_combo, self.protect_class_combo):
            widget.blockSignals(False)
