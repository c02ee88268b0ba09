"""Editing a polygon before it is committed: which vertex or edge a click picks (pure geometry)."""

from __future__ import annotations

import numpy as np

from segstudio.core.interactive.prompts import Point

__all__ = ["pick_edge", "pick_vertex"]


def pick_vertex(points: list[Point], x: float, y: float, radius: float) -> int | None:
    """Index of the vertex within `radius` of (x, y), the nearest one; None when none is."""
    if not points:
        return None
    d = np.hypot(*(np.asarray(points, np.float64) - (x, y)).T)
    i = int(d.argmin())
    return i if d[i] <= radius else None


def pick_edge(points: list[Point], x: float, y: float, radius: float) -> int | None:
    """Index i of the closed polygon's edge (i, i+1) within `radius` of (x, y): insert at i+1."""
    n = len(points)
    if n < 2:
        return None
    p = np.asarray(points, np.float64)
    a, b = p, np.roll(p, -1, axis=0)
    if n == 2:
        a, b = a[:1], b[:1]
    ab = b - a
    t = np.clip(((np.array([x, y]) - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-9), 0, 1)
    d = np.hypot(*(a + t[:, None] * ab - (x, y)).T)
    i = int(d.argmin())
    return i if d[i] <= radius else None
