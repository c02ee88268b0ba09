"""Undo/redo of mask edits as region atoms (bounding box + old values + new values).

Why atoms and not snapshots: a 2048x1024 mask is 2 MB, a brush stroke usually touches a few
kilobytes of it. Storing only the changed rectangle lets a history hold hundreds of steps in a
few megabytes, and the byte bound drops the oldest steps first when an image is edited for hours.
One user action (a whole drag, a fill, a polygon) is one `Step` of one or more atoms.

`HistoryStore` keeps one `History` per image for the session, so switching images and coming
back still allows undo; a total byte budget drops the histories of the least recently used
images first. Plain Python + numpy: no Qt (napari's labels layer follows the same split).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Box", "History", "HistoryStore", "RegionAtom", "Step", "make_atom"]


class Box(NamedTuple):
    """A half-open pixel rectangle: rows y0..y1-1, columns x0..x1-1."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    def union(self, other: Box | None) -> Box:
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return Box(
            min(self.y0, other.y0), min(self.x0, other.x0), max(self.y1, other.y1), max(self.x1, other.x1)
        )

    def clip(self, shape: tuple[int, ...]) -> Box:
        h, w = shape[:2]
        return Box(
            max(0, min(h, self.y0)), max(0, min(w, self.x0)), max(0, min(h, self.y1)), max(0, min(w, self.x1))
        )

    def expand(self, margin: int) -> Box:
        return Box(self.y0 - margin, self.x0 - margin, self.y1 + margin, self.x1 + margin)


@dataclass(frozen=True)
class RegionAtom:
    """The values of one rectangle before and after an edit."""

    box: Box
    old: np.ndarray
    new: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes)


@dataclass(frozen=True)
class Step:
    """One undoable user action."""

    atoms: tuple[RegionAtom, ...]
    label: str = ""

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.atoms)

    @property
    def box(self) -> Box | None:
        out: Box | None = None
        for atom in self.atoms:
            out = atom.box if out is None else out.union(atom.box)
        return out


def make_atom(before: np.ndarray, after: np.ndarray, box: Box) -> RegionAtom | None:
    """The atom for `box` shrunk to the pixels that really changed; None when nothing changed."""
    sl = box.slices
    changed = before[sl] != after[sl]
    if not changed.any():
        return None
    rows = np.flatnonzero(changed.any(axis=1))
    cols = np.flatnonzero(changed.any(axis=0))
    tight = Box(
        box.y0 + int(rows[0]), box.x0 + int(cols[0]), box.y0 + int(rows[-1]) + 1, box.x0 + int(cols[-1]) + 1
    )
    return RegionAtom(tight, before[tight.slices].copy(), after[tight.slices].copy())


class History:
    """Linear undo/redo stack of steps, bounded by step count and by bytes (oldest dropped first)."""

    def __init__(self, max_steps: int = 500, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_steps < 1 or max_bytes < 1:
            raise ValueError("max_steps and max_bytes must be positive")
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._bytes = 0

    # -- queries -----------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by undo and redo steps together."""
        return self._bytes

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_count(self) -> int:
        return len(self._undo)

    @property
    def redo_count(self) -> int:
        return len(self._redo)

    # -- recording -----------------------------------------------------------------------------
    def push(self, step: Step) -> None:
        """Record a new step; clears the redo branch (a new edit forks history)."""
        if not step.atoms:
            return
        for dropped in self._redo:
            self._bytes -= dropped.nbytes
        self._redo.clear()
        self._undo.append(step)
        self._bytes += step.nbytes
        self._enforce_bounds()

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0

    def trim_to(self, max_bytes: int) -> None:
        """Drop the oldest steps until at most `max_bytes` are held (used by `HistoryStore`)."""
        while self._bytes > max_bytes and self._undo:
            self._bytes -= self._undo.popleft().nbytes
        while self._bytes > max_bytes and self._redo:
            self._bytes -= self._redo.pop(0).nbytes

    def _enforce_bounds(self) -> None:
        while len(self._undo) > self.max_steps:
            self._bytes -= self._undo.popleft().nbytes
        # Keep the newest step even when it alone exceeds the budget: losing it would surprise more.
        while self._bytes > self.max_bytes and len(self._undo) > 1:
            self._bytes -= self._undo.popleft().nbytes

    # -- applying ------------------------------------------------------------------------------
    def undo(self, labels: np.ndarray) -> Step | None:
        """Write the old values of the newest step into `labels`; returns the step (None if empty)."""
        if not self._undo:
            return None
        step = self._undo.pop()
        for atom in reversed(step.atoms):
            labels[atom.box.slices] = atom.old
        self._redo.append(step)
        return step

    def redo(self, labels: np.ndarray) -> Step | None:
        """Re-apply the most recently undone step; returns it (None if nothing to redo)."""
        if not self._redo:
            return None
        step = self._redo.pop()
        for atom in step.atoms:
            labels[atom.box.slices] = atom.new
        self._undo.append(step)
        return step


class HistoryStore:
    """Per-image histories kept for the session, with a total byte budget across images.

    When the total exceeds the budget, the least recently used images lose their oldest steps
    first; the image being edited is touched last.
    """

    def __init__(
        self,
        max_steps: int = 500,
        max_bytes_per_image: int = 64 * 1024 * 1024,
        max_bytes_total: int = 512 * 1024 * 1024,
    ) -> None:
        self.max_steps = max_steps
        self.max_bytes_per_image = max_bytes_per_image
        self.max_bytes_total = max_bytes_total
        self._histories: OrderedDict[str, History] = OrderedDict()

    def get(self, key: str) -> History:
        """The history of image `key` (created empty on first use); marks it most recently used."""
        history = self._histories.get(key)
        if history is None:
            history = History(self.max_steps, self.max_bytes_per_image)
            self._histories[key] = history
        self._histories.move_to_end(key)
        return history

    def __contains__(self, key: str) -> bool:
        return key in self._histories

    def discard(self, key: str) -> None:
        self._histories.pop(key, None)

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes for h in self._histories.values())

    def enforce_budget(self) -> None:
        """Trim least recently used histories until the total fits (call after each edit)."""
        total = self.nbytes
        if total <= self.max_bytes_total:
            return
        keys = list(self._histories)
        for key in keys:
            history = self._histories[key]
            excess = total - self.max_bytes_total
            if excess <= 0:
                break
            before = history.nbytes
            history.trim_to(max(0, before - excess))
            total -= before - history.nbytes
            if history.nbytes == 0 and key != keys[-1]:
                del self._histories[key]
