"""Masks <-> painted polygon lists (Cityscapes `polygons.json`, labelme shapes).

Cityscapes' `json2labelImg` fills each polygon in file order with Pillow (edges included) on an
'unlabeled' background, so a later polygon overwrites an earlier one. We exploit that order
instead of encoding holes: every connected component contributes only its *outer* contour
(`cv2.findContours` with `RETR_CCOMP`, parents only), and components are painted largest first,
so whatever sits inside a hole (another class, an island of the same class, or unlabeled pixels,
written as 'unlabeled' polygons) is painted after the component that encloses it.

Where 8-connected components of two classes cross diagonally, no polygon order can be exact; the
writer rasterises its own result and appends one-pixel-high run polygons for the few pixels that
still differ, so rasterising the JSON with Pillow gives back the mask exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

__all__ = ["PaintedPolygon", "mask_to_polygons", "rasterize_polygons"]


@dataclass(frozen=True)
class PaintedPolygon:
    """One filled polygon: the mask value it paints and its vertices as integer (x, y) pixel centres."""

    value: int
    points: tuple[tuple[int, int], ...]


def _touches_border(points: np.ndarray, shape: tuple[int, int]) -> bool:
    height, width = shape
    return bool(
        points[:, 0].min() == 0
        or points[:, 1].min() == 0
        or points[:, 0].max() == width - 1
        or points[:, 1].max() == height - 1
    )


def _outer_contours(mask: np.ndarray, value: int) -> list[tuple[float, np.ndarray]]:
    binary = (mask == value).astype(np.uint8)
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    out = []
    for contour, links in zip(contours, hierarchy[0]):
        if links[3] != -1:  # a hole: filled later by whatever lies inside it
            continue
        points = contour[:, 0, :]
        if len(points) == 1:
            points = np.concatenate([points, points])  # Pillow needs two vertices for a lone pixel
        out.append((abs(cv2.contourArea(contour)), points))
    return out


def rasterize_polygons(polygons: list[PaintedPolygon], shape: tuple[int, int], background: int) -> np.ndarray:
    """Fill polygons in order the way Cityscapes' json2labelImg does (Pillow, edges included)."""
    height, width = shape
    canvas = Image.new("L", (width, height), int(background))
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        draw.polygon(list(polygon.points), fill=int(polygon.value))
    return np.asarray(canvas).copy()


def _run_fixes(mask: np.ndarray, painted: np.ndarray) -> list[PaintedPolygon]:
    """One-pixel-high polygons (horizontal runs of equal value) for every pixel painted wrongly."""
    fixes: list[PaintedPolygon] = []
    wrong = painted != mask
    for y in np.flatnonzero(wrong.any(axis=1)):
        xs = np.flatnonzero(wrong[y])
        values = mask[y, xs]
        breaks = np.flatnonzero((np.diff(xs) != 1) | (np.diff(values.astype(np.int16)) != 0)) + 1
        for run in np.split(np.arange(len(xs)), breaks):
            x0, x1 = int(xs[run[0]]), int(xs[run[-1]])
            fixes.append(PaintedPolygon(int(values[run[0]]), ((x0, int(y)), (x1, int(y)))))
    return fixes


def mask_to_polygons(mask: np.ndarray, background: int = 255, exact: bool = True) -> list[PaintedPolygon]:
    """Polygons whose painting (in list order, on `background`) reproduces `mask`.

    Components of the background value are emitted only where they could lie inside another
    component (not touching the image border), since the canvas already starts as background.
    """
    if mask.ndim != 2:
        raise ValueError("mask must be 2-D")
    candidates: list[tuple[float, int, int, np.ndarray]] = []
    for value in np.unique(mask):
        for area, points in _outer_contours(mask, int(value)):
            if int(value) == background and _touches_border(points, mask.shape):
                continue
            candidates.append((area, len(points), int(value), points))
    # Largest enclosed area first: anything inside a hole is strictly smaller than its encloser.
    candidates.sort(key=lambda c: (-c[0], -c[1]))
    polygons = [
        PaintedPolygon(value, tuple((int(x), int(y)) for x, y in points))
        for _, _, value, points in candidates
    ]
    if exact:
        polygons += _run_fixes(mask, rasterize_polygons(polygons, mask.shape, background))
    return polygons
