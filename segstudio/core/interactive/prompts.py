"""What the user told an interactive tool about one object: clicks, scribbles and an optional box."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["SEED_RADIUS", "Point", "Prompts"]

Point = tuple[float, float]  # (x, y) image pixel coordinates
SEED_RADIUS = 3  # a click marks a small disc, not one pixel: hand jitter and JPEG noise


@dataclass
class Prompts:
    """Positive / negative clicks, positive scribbles (polylines) and a box (x0, y0, x1, y1)."""

    positives: list[Point] = field(default_factory=list)
    negatives: list[Point] = field(default_factory=list)
    scribbles: list[list[Point]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None

    @property
    def empty(self) -> bool:
        return not (self.positives or self.scribbles or self.box)

    def drop_latest(self) -> None:
        """Forget the latest click (Backspace): a negative one first, then a positive one, then a scribble."""
        for bucket in (self.negatives, self.positives, self.scribbles):
            if bucket:
                bucket.pop()
                return

    def copy(self) -> Prompts:
        return Prompts(
            list(self.positives), list(self.negatives), [list(s) for s in self.scribbles], self.box
        )

    def seed_masks(
        self, shape: tuple[int, int], radius: int = SEED_RADIUS, scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) boolean seed masks of `shape` (image coordinates times `scale`)."""
        pos = np.zeros(shape, np.uint8)
        neg = np.zeros(shape, np.uint8)
        r = max(0, int(round(radius * scale)))
        for x, y in self.positives:
            cv2.circle(pos, (int(round(x * scale)), int(round(y * scale))), r, 1, -1)
        for x, y in self.negatives:
            cv2.circle(neg, (int(round(x * scale)), int(round(y * scale))), r, 1, -1)
        for stroke in self.scribbles:
            pts = np.round(np.asarray(stroke, np.float64).reshape(-1, 2) * scale).astype(np.int32)
            if len(pts) == 1:
                cv2.circle(pos, (int(pts[0, 0]), int(pts[0, 1])), r, 1, -1)
            else:
                cv2.polylines(pos, [pts], False, 1, thickness=2 * r + 1)
        neg[pos.astype(bool)] = 0  # the latest intent wins where they overlap: keep positives
        return pos.astype(bool), neg.astype(bool)
