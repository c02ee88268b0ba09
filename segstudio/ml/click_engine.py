"""The ``learned`` click engine: the project's click model (`ml.click_model`) behind the engine interface.

Importing this module is cheap (no torch): `use_click_model(path)` only registers the engine; the
model (and torch) load in `prepare`, which the GUI runs off the GUI thread like every engine's
precomputation. Per click it runs one forward pass on the zoom-in crop around the open object.

The model needs the object's previous mask, but engines are called with the whole prompt list each
time (`ClickSession`): the engine remembers its answer per prompt list, so a new click finds the
answer to the prompts before it (undo then simply finds an earlier answer); without one it replays
the clicks, positives first.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.interactive.engines import Engine, register_engine
from segstudio.core.interactive.prompts import Prompts

__all__ = ["LearnedEngine", "use_click_model"]

_models: dict[tuple[str, float], Any] = {}  # (path, mtime) -> ClickPredictor, shared by engines
_lock = threading.Lock()
MEMO = 64  # remembered answers per image


def _on_device(model: Any) -> Any:
    """The model on the project's device (ml.device: CUDA, then MPS, then CPU), under autocast there;
    takes and returns CPU float tensors, so `ClickPredictor` stays device-agnostic."""
    import torch

    from segstudio.ml.click_model_train import amp_precision
    from segstudio.ml.device import pick_device
    from segstudio.ml.train_loop import autocast_for

    device = pick_device("auto")
    amp = autocast_for(amp_precision(device), device)

    class OnDevice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.device = model.to(device), device

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with amp():
                return self.inner(x.to(self.device)).float().cpu()

    return OnDevice()


def _predictor(path: Path, threads: int | None) -> Any:
    key = (str(path.resolve()), path.stat().st_mtime)
    with _lock:
        if key not in _models:
            from segstudio.ml.click_model import ClickPredictor, load_click_model

            model, info = load_click_model(path)
            use_prev = bool(info.get("use_prev", True))
            _models[key] = ClickPredictor(_on_device(model), threads, use_prev=use_prev)
        return _models[key]


class LearnedEngine(Engine):
    name = "learned"

    def __init__(self, path: str | Path, tolerance: float | None = None, threads: int | None = 1) -> None:
        super().__init__(tolerance)
        self.path = Path(path)
        self.threads = threads
        self.predictor: Any = None
        self._memo: dict[tuple, np.ndarray] = {}

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        super().prepare(image, probabilities)
        self.predictor = _predictor(self.path, self.threads)
        self._memo = {}

    @property
    def ready(self) -> bool:
        return self.image is not None and self.predictor is not None

    def _answer(self, pos: tuple, neg: tuple) -> np.ndarray:
        key = (pos, neg)
        if key in self._memo:
            return self._memo[key]
        assert self.image is not None
        if not pos:
            return np.zeros(self.image.shape[:2], bool)
        if (pos[:-1], neg) in self._memo:  # the latest click was a positive one
            prev = self._memo[(pos[:-1], neg)]
        elif neg:  # the latest was a negative one (or nothing remembered: replay, positives first)
            prev = self._answer(pos, neg[:-1])
        elif len(pos) > 1:
            prev = self._answer(pos[:-1], neg)
        else:
            prev = np.zeros(self.image.shape[:2], bool)
        region = self.predictor.predict(self.image, list(pos), list(neg), prev)
        if len(self._memo) >= MEMO:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = region
        return region

    def _region(self, prompts: Prompts, active_class: int, barrier: np.ndarray | None) -> np.ndarray:
        if self.predictor is None:
            from segstudio.core.errors import UsageError

            raise UsageError("the learned engine has no model yet: call prepare() first")
        pos = list(prompts.positives)
        for stroke in prompts.scribbles:  # a scribble: its points count as positive clicks
            pos += [stroke[i] for i in np.linspace(0, len(stroke) - 1, min(len(stroke), 5)).astype(int)]
        region = self._answer(tuple(pos), tuple(prompts.negatives)).copy()
        if barrier is not None:  # finished work of other classes: the click model may not flood it
            region &= ~barrier
        return region


def use_click_model(path: str | Path, threads: int | None = 1) -> None:
    """Make ``learned`` an engine choice backed by the click model at `path` (loaded on first prepare)."""
    path = Path(path)

    def factory(tolerance: float | None = None) -> LearnedEngine:
        return LearnedEngine(path, tolerance, threads)

    register_engine("learned", factory)
