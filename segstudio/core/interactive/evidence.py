"""What the mask already says around a new object: the labels, which of them are model guesses, how sure.

Why one object for it: the GUI (`gui/smart_tools.py`) and the benchmark robot (`robot.py`) must hand
the click tools exactly the same evidence, or the robot measures a different tool than users get.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segstudio.core.schemes import UNLABELED

__all__ = ["UNSURE", "MaskEvidence", "confirmed_labels"]

#: model confidence below which a guess is only a guess: the engines treat it as unlabeled, and a
#: click may take it whatever its class (`extent.limit_to_object`); above it, a guess is evidence
#: like a label the user drew (measured: docs/smart-tools.md)
UNSURE = 0.6


def confirmed_labels(labels: np.ndarray, prediction: np.ndarray | None) -> np.ndarray:
    """The labels an engine may trust as finished: pixels still equal to the model's prediction are
    only a guess (the click may be correcting them), so they count as unlabeled."""
    if prediction is None:
        return labels
    return np.where(labels == prediction, np.uint8(UNLABELED), labels).astype(np.uint8)


@dataclass(frozen=True)
class MaskEvidence:
    """The mask before this object, the model's prediction it started from, and the model's confidence.

    `confidence` is the model's per-pixel top probability as stored with the prediction (uint8,
    round(255 p), `MaskDocument.confidence`) or float in [0, 1]; None: unknown (a guess then counts as sure).
    """

    labels: np.ndarray
    prediction: np.ndarray | None = None
    confidence: np.ndarray | None = None

    @property
    def confirmed(self) -> np.ndarray:
        """What the engines take as the labels so far: the guesses the model was unsure of count as
        unlabeled (a click may correct them); the sure ones stay, as evidence the engines respect (they
        stop at other classes and correct the clicked class only near the click). Treating every guess
        as unlabeled let one click on a predicted street photo take 66 % of it."""
        if self.prediction is None:
            return self.labels
        unsure = self.guesses & (self.sureness() < UNSURE)
        return np.where(unsure, np.uint8(UNLABELED), self.labels).astype(np.uint8)

    @property
    def guesses(self) -> np.ndarray:
        """Pixels whose label is still the model's prediction."""
        if self.prediction is None:
            return np.zeros(self.labels.shape, bool)
        return (self.labels == self.prediction) & (self.labels != UNLABELED)

    def sureness(self) -> np.ndarray:
        """The model's confidence in [0, 1] per pixel (1 where unknown)."""
        return self.sureness_in((slice(None), slice(None)))

    def sureness_in(self, box: tuple[slice, slice]) -> np.ndarray:
        """`sureness()` of the pixels in `box` only (a click's window: not the whole photo per click)."""
        if self.confidence is None:
            return np.ones(self.labels[box].shape, np.float32)
        conf = np.asarray(self.confidence)[box]
        return conf.astype(np.float32) / 255.0 if conf.dtype == np.uint8 else conf.astype(np.float32)
