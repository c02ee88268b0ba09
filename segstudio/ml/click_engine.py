"""The ``learned`` click engine: the project's click model (`ml.click_model`) behind the engine interface.

Importing this module is cheap (no torch): `use_click_model(path)` only registers the engine; the
model (and torch) load in `prepare`, which the GUI runs off the GUI thread like every engine's
precomputation. Per click it runs one forward pass on the zoom-in crop around the open object (a
second one in a focus window for a focus model's click near the boundary).

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

_models: dict[tuple[str, float, bool], Any] = {}  # (path, mtime, guided) -> ClickPredictor, shared
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

        @property
        def prior(self) -> torch.Tensor:
            return self.inner.prior

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with amp():
                return self.inner(x.to(self.device)).float().cpu()

        def delta(self, x: torch.Tensor) -> torch.Tensor:
            with amp():
                return self.inner.delta(x.to(self.device)).float().cpu()

    return OnDevice()


def _predictor(path: Path, threads: int | None, guided: bool = True) -> Any:
    try:
        stamp = path.stat().st_mtime
    except OSError as error:  # gone since it was chosen (a rollback, a cleanup): a message, not a traceback
        from segstudio.core.errors import CheckpointError

        raise CheckpointError(
            f"cannot read the click model {path} ({error.strerror or error}); "
            "train one with segstudio train --click-model"
        ) from None
    key = (str(path.resolve()), stamp, guided)
    with _lock:
        if key not in _models:
            from segstudio.ml.click_model import ClickPredictor, load_click_model

            model, info = load_click_model(path)
            _models[key] = ClickPredictor.from_info(_on_device(model), info, threads, guided)
        return _models[key]


def segmentation_checkpoint(click_model: Path) -> Path:
    """The segmentation model a click model starts from: its version's best.pt (the same folder)."""
    from segstudio.ml.train_config import BEST_NAME

    return click_model.parent / BEST_NAME


class LearnedEngine(Engine):
    name = "learned"
    # trained on single objects, one 96 px crop around the previous mask and clicks: its region is one
    # object (a click changed at most 1.4x the object's true area, p95), so no click-window limit
    object_bounded = True

    def __init__(
        self,
        path: str | Path,
        tolerance: float | None = None,
        threads: int | None = 1,
        segmentation: str | Path | None = None,
        guided: bool = True,
    ) -> None:
        super().__init__(tolerance)
        self.guided = guided  # False: the crop's raw boundary (the benchmark's before/after)
        self.path = Path(path)
        self.segmentation = Path(segmentation) if segmentation else segmentation_checkpoint(self.path)
        self.threads = threads
        self.predictor: Any = None
        self.evidence: Any = None  # ml.click_evidence.SegEvidence of this image (None: not used)
        self._memo: dict[tuple, np.ndarray] = {}

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        """Load the click model (once per file) and this image's segmentation evidence: `probabilities`
        (C x h x w, the caller's prediction by the same model) or the version's best.pt run once here."""
        super().prepare(image, probabilities)
        self.predictor = _predictor(self.path, self.threads, self.guided)
        self.evidence = None
        if self.predictor.seg_evidence or self.predictor.proposal:
            from segstudio.ml.click_evidence import SegEvidence, segmentation_probabilities

            assert self.image is not None
            if probabilities is None:
                if not self.segmentation.is_file():
                    from segstudio.core.errors import UsageError

                    raise UsageError(
                        f"the click model {self.path.name} needs its version's segmentation model "
                        f"({self.segmentation}); train the version again with the click model ticked"
                    )
                probabilities = segmentation_probabilities(self.segmentation, self.image)
            self.evidence = SegEvidence(probabilities, self.image.shape[:2])
        self._memo = {}

    @property
    def ready(self) -> bool:
        return self.image is not None and self.predictor is not None

    def _answer(self, pos: tuple, neg: tuple, c: int) -> np.ndarray:
        """The answer to these prompts, from the remembered answer to the ones before the latest; with
        none remembered, the clicks are replayed (positives first). A loop, not recursion: a long prompt
        list replayed at once (a re-prepared image, many scribbles) hit Python's recursion limit at
        ~1000 prompts."""
        assert self.image is not None
        steps: list[tuple[tuple, tuple, tuple[float, float, bool] | None]] = []  # (pos, neg, latest click)
        while pos and (pos, neg, c) not in self._memo:
            if (pos[:-1], neg, c) in self._memo or (not neg and len(pos) > 1):  # the latest was positive
                steps.append((pos, neg, (*pos[-1], True)))
                pos = pos[:-1]
            elif neg:  # the latest was a negative one (or nothing remembered: replay, positives first)
                steps.append((pos, neg, (*neg[-1], False)))
                neg = neg[:-1]
            else:  # the first click
                steps.append((pos, neg, None))
                pos = ()
        region = self._memo[(pos, neg, c)] if pos else np.zeros(self.image.shape[:2], bool)
        for p, n, latest in reversed(steps):
            region = self.predictor.predict(self.image, list(p), list(n), region, self.evidence, c, latest)
            if len(self._memo) >= MEMO:
                self._memo.pop(next(iter(self._memo)))
            self._memo[(p, n, c)] = region
        return region

    def _region(self, prompts: Prompts, active_class: int, barrier: np.ndarray | None) -> np.ndarray:
        if self.predictor is None:
            from segstudio.core.errors import UsageError

            raise UsageError("the learned engine has no model yet: call prepare() first")
        pos = list(prompts.positives)
        for stroke in prompts.scribbles:  # a scribble: its points count as positive clicks
            pos += [stroke[i] for i in np.linspace(0, len(stroke) - 1, min(len(stroke), 5)).astype(int)]
        region = self._answer(tuple(pos), tuple(prompts.negatives), int(active_class)).copy()
        if barrier is not None:  # finished work of other classes: the click model may not flood it
            region &= ~barrier
        return region


def use_click_model(
    path: str | Path,
    threads: int | None = 1,
    segmentation: str | Path | None = None,
    guided: bool = True,
) -> None:
    """Make ``learned`` an engine choice backed by the click model at `path` (loaded on first prepare)
    and the segmentation model it starts from (default: the best.pt next to it)."""
    path = Path(path)

    def factory(tolerance: float | None = None) -> LearnedEngine:
        return LearnedEngine(path, tolerance, threads, segmentation, guided)

    register_engine("learned", factory)
