"""Semantic masks <-> YOLO segmentation polygons (one simple polygon per connected region).

A YOLO label line is one polygon without holes, and readers (Ultralytics' `polygon2mask`) fill
each with `cv2.fillPoly`. A region with holes is therefore written as ONE polygon whose holes are
*bridged* into the outer contour: from the outer vertex nearest to a hole, along a zero-width cut
to the hole, once around the hole, and back the same way. The fill (even-odd) leaves the hole
empty, and the cut runs through the region's own pixels, so nothing outside it is painted.

Coordinates: OpenCV traces contours through the centres of boundary pixels; a vertex at pixel
(x, y) is written as ((x + 0.5) / width, (y + 0.5) / height), the pixel centre in normalised image
coordinates. Ultralytics scales back by the image size and truncates to int32, which lands on the
same pixel; `rasterize_yolo` does exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["bridge_holes", "mask_to_yolo_lines", "parse_yolo_lines", "rasterize_yolo", "region_polygons"]


def bridge_holes(outer: np.ndarray, holes: Iterable[np.ndarray]) -> np.ndarray:
    """One closed (N, 2) vertex ring: `outer` with each hole spliced in at its nearest vertex pair."""
    ring = np.asarray(outer, dtype=np.int64).reshape(-1, 2)
    for hole in sorted((np.asarray(h, dtype=np.int64).reshape(-1, 2) for h in holes), key=len, reverse=True):
        distances = ((ring[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        around = np.concatenate([hole[j:], hole[: j + 1]])  # start and end on the bridge vertex
        ring = np.concatenate([ring[: i + 1], around, ring[i:]])
    return ring


def region_polygons(binary: np.ndarray) -> list[np.ndarray]:
    """Bridged polygons (integer pixel vertices, >= 3 each) of every connected region of `binary`."""
    contours, hierarchy = cv2.findContours(binary.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    links = hierarchy[0]
    polygons = []
    for index, contour in enumerate(contours):
        if links[index][3] != -1:
            continue  # a hole: spliced into its parent below
        holes, child = [], links[index][2]
        while child != -1:
            holes.append(contours[child][:, 0, :])
            child = links[child][0]
        ring = bridge_holes(contour[:, 0, :], holes)
        while len(ring) < 3:  # a lone pixel or a one-pixel line: YOLO needs three vertices
            ring = np.concatenate([ring, ring[-1:]])
        polygons.append(ring)
    return polygons


def mask_to_yolo_lines(mask: np.ndarray, classes: Iterable[int], decimals: int = 6) -> list[str]:
    """`class x1 y1 x2 y2 ...` lines for every region of each class in `classes` (largest regions first)."""
    height, width = mask.shape
    scale = np.array([width, height], dtype=np.float64)
    found: list[tuple[int, int, np.ndarray]] = []
    present = set(np.unique(mask).tolist())
    for value in classes:
        if value not in present:
            continue
        for ring in region_polygons(mask == value):
            found.append((int(cv2.contourArea(ring.astype(np.int32).reshape(-1, 1, 2))), value, ring))
    found.sort(key=lambda f: -f[0])
    lines = []
    for _, value, ring in found:
        coords = ((ring + 0.5) / scale).reshape(-1)
        lines.append(f"{value} " + " ".join(f"{c:.{decimals}f}" for c in coords))
    return lines


def parse_yolo_lines(text: str) -> list[tuple[int, np.ndarray]]:
    """(class, (N, 2) normalised vertices) per non-empty line."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if parts:
            out.append((int(parts[0]), np.array(parts[1:], dtype=np.float64).reshape(-1, 2)))
    return out


def rasterize_yolo(
    polygons: list[tuple[int, np.ndarray]], shape: tuple[int, int], background: int = 255
) -> np.ndarray:
    """Fill polygons in order as Ultralytics does (scale to pixels, truncate to int32, cv2.fillPoly)."""
    height, width = shape
    mask = np.full(shape, background, dtype=np.uint8)
    for value, points in polygons:
        pixels = (points * np.array([width, height])).astype(np.int32)
        cv2.fillPoly(mask, [pixels.reshape(-1, 1, 2)], int(value))
    return mask
