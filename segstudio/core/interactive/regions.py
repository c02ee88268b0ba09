"""Writing a tool's region into a label array, and the connected-to-a-seed filter engines share."""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.document import Protect

__all__ = ["keep_seeded", "paste_region", "pixel_accuracy"]


def paste_region(
    labels: np.ndarray, region: np.ndarray, value: int, protect: Protect | None = None
) -> np.ndarray:
    """Write `value` into `labels` (in place) where `region` is set and `protect` allows; returns changed pixels."""
    where = region.astype(bool, copy=True)
    allowed = (protect or Protect.none()).allowed(labels)
    if allowed is not None:
        where &= allowed
    where &= labels != value
    labels[where] = value
    return where


def keep_seeded(region: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Only the 8-connected parts of `region` that touch a seed pixel (engines leak stray blobs)."""
    if not seeds.any():
        return region
    count, comp = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    if count <= 1:
        return region
    keep = np.zeros(count, bool)  # a lookup per component: ~3x faster than np.isin on a large image
    keep[comp[seeds & region]] = True
    keep[0] = False
    return keep[comp]


def pixel_accuracy(labels: np.ndarray, truth: np.ndarray, void: int = 255) -> float:
    """Fraction of non-void truth pixels that `labels` gets right (1.0 when all are void)."""
    valid = truth != void
    n = int(valid.sum())
    return 1.0 if n == 0 else float(np.count_nonzero((labels == truth) & valid)) / n
