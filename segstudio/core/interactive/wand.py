"""Magic wand: the colour-similar connected region around a click (Label Studio / Photoshop style)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["DEFAULT_TOLERANCE", "magic_wand", "tolerance_from_drag"]

DEFAULT_TOLERANCE = 24  # per RGB channel, compared with the clicked pixel's colour


def magic_wand(image: np.ndarray, x: float, y: float, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Boolean HxW region 8-connected to (x, y) whose colours lie within `tolerance` of the seed's.

    The seed colour is the median of a 3x3 patch, so one noisy pixel does not decide the region.
    """
    h, w = image.shape[:2]
    xi, yi = int(round(x)), int(round(y))
    if not (0 <= xi < w and 0 <= yi < h):
        return np.zeros((h, w), bool)
    src = np.ascontiguousarray(image[..., :3])
    patch = src[max(0, yi - 1) : yi + 2, max(0, xi - 1) : xi + 2].reshape(-1, 3)
    seed_color = np.median(patch, axis=0)
    # Compare against a constant seed colour: replace the seed pixel so FIXED_RANGE uses the median.
    work = src.copy()
    work[yi, xi] = seed_color.astype(np.uint8)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    tol = (float(tolerance),) * 3
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    cv2.floodFill(work, mask, (xi, yi), (0, 0, 0), tol, tol, flags)
    return mask[1:-1, 1:-1].astype(bool)


def tolerance_from_drag(distance_px: float, start: float = DEFAULT_TOLERANCE) -> float:
    """Dragging right widens (left narrows) the tolerance by one level per 2 image pixels (0-255)."""
    return float(np.clip(start + distance_px / 2.0, 0, 255))
