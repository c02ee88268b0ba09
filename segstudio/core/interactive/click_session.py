"""One object being segmented by clicks: the prompts so far, the engine, the latest region.

More clicks refine the same object until the caller accepts it (the GUI: Enter, or a click of
another class) - then the region is written once, as one undo step.
"""

from __future__ import annotations

import time

import numpy as np

from segstudio.core.interactive.engines import Engine
from segstudio.core.interactive.evidence import MaskEvidence
from segstudio.core.interactive.extent import keep_corrections, limit_to_object
from segstudio.core.interactive.prompts import Point, Prompts

__all__ = ["ClickSession"]


class ClickSession:
    def __init__(
        self, engine: Engine, active_class: int, labels: np.ndarray | MaskEvidence | None = None
    ) -> None:
        self.engine = engine
        #: the mask before this object with the model's prediction and confidence (never written); a bare
        #: array: labels the engine takes as finished work (`evidence.confirmed_labels`)
        self.evidence = labels if isinstance(labels, MaskEvidence) else None
        self.labels = labels.confirmed if isinstance(labels, MaskEvidence) else labels
        self._limit_memo: dict = {}  # what the extent limit derives from the evidence, once per object
        self.active_class = int(active_class)
        self.prompts = Prompts()
        self.region: np.ndarray | None = None
        self.last_seconds = 0.0  # latency of the latest update (what a user waits for)

    @property
    def actions(self) -> int:
        return (
            len(self.prompts.positives)
            + len(self.prompts.negatives)
            + len(self.prompts.scribbles)
            + (1 if self.prompts.box is not None else 0)
        )

    def click(self, x: float, y: float, positive: bool = True) -> np.ndarray:
        (self.prompts.positives if positive else self.prompts.negatives).append((float(x), float(y)))
        return self._update()

    def scribble(self, points: list[Point]) -> np.ndarray:
        self.prompts.scribbles.append([(float(x), float(y)) for x, y in points])
        return self._update()

    def box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        self.prompts.box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return self._update()

    def undo_prompt(self) -> np.ndarray | None:
        """Drop the latest click (Backspace)."""
        self.prompts.drop_latest()
        return self._update()

    def update_to(self, prompts: Prompts) -> np.ndarray:
        """The region for these prompts, which replace the session's (the GUI's click worker: the GUI
        thread keeps its own copy of what the user clicked and sends the whole list, so several
        clicks queued meanwhile cost one update)."""
        self.prompts = prompts
        return self._update()

    def _update(self) -> np.ndarray:
        start = time.perf_counter()
        region = self.engine.region(self.prompts, self.active_class, self.labels)
        # a click means "this object" (core/interactive/extent.py); an object-bounded engine's region
        # already is one object (the learned engine: measured in docs/click-model.md)
        if self.evidence is not None and getattr(self.engine, "object_bounded", False):
            image = getattr(self.engine, "image", None)
            region = keep_corrections(
                region, self.prompts, self.active_class, self.evidence, image, self.engine
            )
        elif self.evidence is not None:
            region = limit_to_object(
                region,
                self.prompts,
                self.active_class,
                self.evidence,
                getattr(self.engine, "image", None),  # an engine of the protocol need not keep it
                self.engine,
                self._limit_memo,
            )
        self.region = region
        self.last_seconds = time.perf_counter() - start
        return self.region
