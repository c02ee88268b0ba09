"""Training the click model from done images by simulated clicks (RITM's iterative protocol).

Objects are the connected regions of one class in a corrected mask. Each training sample starts with
a positive click at the object's interior point (the robot's first click, `core.interactive.robot`),
sometimes at a random interior pixel instead; then 0..`max_iters` rounds run the model *without*
gradient, paste its prediction back as the previous mask and add the next click on the larger error
(false negative -> positive click, false positive -> negative click, each at its interior point:
the benchmark's `object_clicks` protocol). The last round is trained with binary cross-entropy.
Each round recomputes the zoom-in window from the clicks and the previous mask, as inference does.

The segmentation model's evidence (`ml.click_evidence`): each frame carries class probabilities
that a segmentation model which did NOT train on that frame predicted (cross-fitting, or an early
checkpoint: a model predicting its own training frames is far surer than on new ones, and a click
model trained on such priors would trust them too much). The first click's previous mask is the
model's proposal (`SegEvidence.proposal`, or the colour region where the model has none), and so
is each later positive click's outside the previous mask, as at inference
(`ClickPredictor.start_mask`). A share of first clicks lands on the part of the object the model got
wrong (`error_first`), as the robot's first click does when it corrects a prediction (`--start model`).
With `focus`, the rounds answer a corrective click near the boundary a second time in its focus
window, as inference does, and half of such trained clicks train that second pass.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import torch

from segstudio.core.errors import MaskError
from segstudio.core.interactive.robot import interior_point
from segstudio.ml.click_evidence import SegEvidence
from segstudio.ml.click_model import (
    OBLONG_CROPS,
    ClickNet,
    ClickPredictor,
    check_frame,
    crop_window,
    encode,
    paste_logits,
    save_click_model,
)

__all__ = ["ClickTrainConfig", "ClickTrainResult", "ObjectBank", "amp_precision", "train_click_model"]

VOID = 255


@dataclass
class ClickTrainConfig:
    steps: int = 1800  # optimizer steps at most (900 were too few: docs/click-model.md)
    time_budget_s: float | None = None  # stop after this long (whichever comes first)
    batch: int = 8
    lr: float = 2e-3
    max_iters: int = 3  # rounds of simulated corrective clicks before the trained one (0 = no iterative)
    use_prev: bool = True  # feed the previous mask (ablation: False zeroes that channel)
    min_object: float = 0.002  # objects smaller than this fraction of the frame are not sampled
    max_side: int = 480  # frames are reduced to this long side first (the GUI's working size)
    width: int = 16
    prior: float = 1.0  # initial weight of the previous mask in the logits (ClickNet)
    seg_evidence: bool = True  # feed p(clicked class) (needs the bank's probabilities)
    proposal: bool = True  # the first click's previous mask is the segmentation model's proposal
    colour_fallback: bool = True  # ... or the colour region around the click where the model has none
    per_click: bool = True  # ... for every positive click outside the previous mask, not the first only
    #: where the model disagrees with a click, its own segment there is the start (not the colour
    #: region): 2 seeds, 26 CamVid val frames, 90 % in 29.8 actions against 35.1 (docs/click-model.md)
    misnamed: bool = True
    error_first: float = 0.3  # share of first clicks on the object's part the segmentation model got wrong
    max_aspect: float = OBLONG_CROPS  # the zoom-in crop's longest side : shortest (1: square, RITM's)
    #: corrective clicks near the boundary are refined in a local window (FocalClick's two passes):
    #: 2 seeds, 26 CamVid val frames, 90 % in 26.6 / 24.7 actions against 29.9 / 29.7 (docs/click-model.md)
    focus: bool = True
    seed: int = 0
    threads: int = 1
    device: str = "auto"  # ml.device.pick_device: the trainer passes its own device (AMP on CUDA)


@dataclass
class ClickTrainResult:
    path: Path | None
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    images: int = 0
    objects: int = 0
    reason: str = "completed"  # completed | time_budget | cancelled


def _reduced(image: np.ndarray, mask: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return image, mask
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.resize(
        mask, size, interpolation=cv2.INTER_NEAREST
    )


class ObjectBank:
    """Frames and their objects (connected regions of one class), kept in memory for sampling."""

    def __init__(
        self,
        pairs: Sequence[tuple[np.ndarray, np.ndarray]],
        min_object: float,
        probabilities: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        self.frames: list[tuple[np.ndarray, np.ndarray]] = []
        #: per frame: the segmentation evidence (class probabilities by a model that did not train on it)
        self.evidence: list[SegEvidence | None] = []
        self.objects: list[tuple[int, int, np.ndarray]] = []  # (frame index, class, boolean mask)
        self._flipped: dict[int, SegEvidence | None] = {}
        probabilities = list(probabilities) if probabilities is not None else [None] * len(pairs)
        if len(probabilities) != len(pairs):
            raise ValueError(f"{len(probabilities)} probability maps for {len(pairs)} frames")
        for (image, mask), probs in zip(pairs, probabilities, strict=True):
            index = len(self.frames)
            check_frame(image, f"the click model's training frame {index}")
            if mask.shape != image.shape[:2]:  # objects would be cut from the wrong pixels, silently
                raise MaskError(
                    f"the click model's training frame {index}: its mask is {mask.shape}, "
                    f"its image {image.shape[:2]}"
                )
            self.frames.append((image, mask))
            self.evidence.append(None if probs is None else SegEvidence(probs, mask.shape))
            for c in np.unique(mask):
                if c == VOID:
                    continue
                count, comp, stats, _ = cv2.connectedComponentsWithStats(
                    (mask == c).view(np.uint8), connectivity=8
                )
                for k in range(1, count):
                    if stats[k, cv2.CC_STAT_AREA] >= min_object * mask.size:
                        self.objects.append((index, int(c), comp == k))
        if not self.objects:
            from segstudio.ml.train_config import TrainingError

            labelled = any((mask != VOID).any() for _, mask in self.frames)
            raise TrainingError(
                "no objects to train the click model on: "
                + (
                    f"every labelled region in {len(self.frames)} done mask(s) is smaller than "
                    f"{min_object:.1%} of its frame"
                    if labelled
                    else f"no labelled region in {len(self.frames)} done mask(s)"
                )
            )

    def flipped_evidence(self, frame: int) -> SegEvidence | None:
        """Frame `frame`'s evidence mirrored left-right (made once: the training's flip augmentation)."""
        if frame not in self._flipped:
            seg = self.evidence[frame]
            self._flipped[frame] = None if seg is None else SegEvidence(seg.probs[:, :, ::-1])
        return self._flipped[frame]

    @property
    def has_evidence(self) -> bool:
        return any(e is not None for e in self.evidence)

    @classmethod
    def from_files(
        cls,
        pairs: Sequence[tuple[str | Path, str | Path]],
        min_object: float,
        max_side: int,
        predict: Callable[[int, np.ndarray], np.ndarray | None] | None = None,
    ) -> ObjectBank:
        """Frames from files; `predict(i, image)` gives frame i's class probabilities (C x H x W), the
        segmentation evidence (None: the click model trains without it). Each pair is read as the
        segmentation trainer reads it (`ml.data.SegmentationDataset`): a mask that is not a single-channel
        8-bit PNG is a MaskError naming it (it was skipped, or its 16-bit labels wrapped, silently), and
        a mask of another size than its image is resized to it (its objects were misplaced)."""
        from segstudio.ml.data import SegmentationDataset
        from segstudio.ml.manifest import Sample

        files = SegmentationDataset([Sample(str(image), str(mask)) for image, mask in pairs])
        loaded, probs = [], []
        for i in range(len(files)):
            image, mask = _reduced(*files.pair(i), max_side)
            loaded.append((image, mask))
            probs.append(None if predict is None else predict(i, image))
        return cls(loaded, min_object, probs)


def _first_click(
    obj: np.ndarray, rng: random.Random, missed: np.ndarray | None = None, error_first: float = 0.0
) -> tuple[float, float]:
    """The object's interior point (70 %), a random interior pixel (30 %); with `missed` (the part of
    the object the segmentation model did not call its class), the interior point of its largest part
    for a share `error_first` of the clicks (the robot correcting a prediction clicks there)."""
    if missed is not None and rng.random() < error_first:
        count, comp, stats, _ = cv2.connectedComponentsWithStats(missed.view(np.uint8), connectivity=8)
        if count > 1:
            k = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
            if stats[k, cv2.CC_STAT_AREA] >= 20:
                x, y, _ = interior_point(comp == k)
                return float(x), float(y)
    if rng.random() < 0.7:
        x, y, _ = interior_point(obj)
        return float(x), float(y)
    inner = cv2.erode(obj.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ys, xs = np.nonzero(inner if inner.any() else obj)
    i = rng.randrange(len(xs))
    return float(xs[i]), float(ys[i])


def next_click(
    pred: np.ndarray, obj: np.ndarray, valid: np.ndarray | None = None
) -> tuple[float, float, bool] | None:
    """The benchmark's corrective click: at the interior point of the larger error (False: negative)."""
    fn, fp = obj & ~pred, pred & ~obj
    if valid is not None:
        fp &= valid
    xn, yn, rn = interior_point(fn) if fn.any() else (0, 0, -1.0)
    xp, yp, rp = interior_point(fp) if fp.any() else (0, 0, -1.0)
    if rn < 0 and rp < 0:
        return None
    return (float(xn), float(yn), True) if rn >= rp else (float(xp), float(yp), False)


@dataclass
class _State:
    image: np.ndarray
    obj: np.ndarray
    valid: np.ndarray
    pos: list[tuple[float, float]]
    neg: list[tuple[float, float]]
    prev: np.ndarray
    seg: SegEvidence | None = None
    cls: int = 0
    latest: tuple[float, float, bool] | None = None  # the last corrective click (x, y, positive)


def _batch(
    states: list[_State], predictor: ClickPredictor, device: Any = "cpu"
) -> tuple[torch.Tensor, list[Any], list[np.ndarray]]:
    """The network inputs as inference builds them (`ClickPredictor`: start mask, window, channels)."""
    xs, windows, fed = [], [], []
    for s in states:
        start = predictor.start_mask(s.image, s.pos, s.neg, s.prev, s.seg, s.cls)
        window = crop_window(s.obj.shape, s.pos + s.neg, start, max_aspect=predictor.max_aspect)
        prev = start if predictor.use_prev else np.zeros_like(start)
        plane = s.seg.plane(s.cls) if (s.seg is not None and predictor.seg_evidence) else None
        xs.append(encode(s.image, s.pos, s.neg, prev, window, plane))
        windows.append(window)
        fed.append(prev)
    return torch.from_numpy(np.stack(xs)).to(device), windows, fed


def _focus_windows(states: list[_State], predictor: ClickPredictor, windows: list[Any]) -> list[Any]:
    """Per state, where a focus model refines its answer to the latest click (None: nowhere)."""
    return [
        predictor.focus_window(window, s.pos + s.neg, s.prev, s.latest)
        for s, window in zip(states, windows, strict=True)
    ]


def _refine_inputs(state: _State, predictor: ClickPredictor, answer: np.ndarray, window: Any) -> np.ndarray:
    """The second (focus) pass's input: the whole-window answer as the previous mask."""
    plane = state.seg.plane(state.cls) if (state.seg is not None and predictor.seg_evidence) else None
    return encode(state.image, state.pos, state.neg, answer, window, plane)


def _answers(model: ClickNet, x: torch.Tensor, windows: list[Any], fed: list[np.ndarray]) -> list[np.ndarray]:
    """The frame-sized answers of one no-gradient pass (as inference pastes them, without the guide)."""
    deltas = model.delta(x).float()[:, 0].cpu().numpy()
    prior = float(model.prior)
    return [paste_logits(d, prior, f, w) for d, w, f in zip(deltas, windows, fed, strict=True)]


def _refine(
    model: ClickNet,
    states: list[_State],
    predictor: ClickPredictor,
    answers: list[np.ndarray],
    windows: list[Any],
    device: Any,
) -> None:
    """The focus pass over a batch (no gradient): `answers[i]` refined in place where state i's latest
    click has a focus window."""
    focus = [(i, w) for i, w in enumerate(_focus_windows(states, predictor, windows)) if w is not None]
    if not focus:
        return
    x = np.stack([_refine_inputs(states[i], predictor, answers[i], w) for i, w in focus])
    refined = _answers(
        model, torch.from_numpy(x).to(device), [w for _, w in focus], [answers[i] for i, _ in focus]
    )
    for (i, _), answer in zip(focus, refined, strict=True):
        answers[i] = answer


def _train_focus_pass(
    model: ClickNet,
    states: list[_State],
    predictor: ClickPredictor,
    x: torch.Tensor,
    windows: list[Any],
    fed: list[np.ndarray],
    rng: random.Random,
    amp: Callable[[], Any],
    device: Any,
) -> torch.Tensor:
    """Half the clicks that have a focus window train the second pass: their input becomes the focus
    crop with the whole-window answer (no gradient) as the previous mask; `windows` is updated in place."""
    chosen = [
        (i, local)
        for i, local in enumerate(_focus_windows(states, predictor, windows))
        if local is not None and rng.random() < 0.5
    ]
    if not chosen:
        return x
    index = [i for i, _ in chosen]
    model.eval()
    with torch.no_grad(), amp():
        whole = _answers(model, x[index], [windows[i] for i in index], [fed[i] for i in index])
    x = x.clone()
    for (i, local), answer in zip(chosen, whole, strict=True):
        x[i] = torch.from_numpy(_refine_inputs(states[i], predictor, answer, local)).to(device)
        windows[i] = local
    return x


def _targets(states: list[_State], windows: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    from segstudio.ml.click_model import CROP

    ts, ws = [], []
    for s, window in zip(states, windows, strict=True):
        m = window.to_crop()
        ts.append(cv2.warpAffine(s.obj.astype(np.float32), m, (CROP, CROP), flags=cv2.INTER_LINEAR))
        inside = cv2.warpAffine(np.ones(s.obj.shape, np.uint8), m, (CROP, CROP), flags=cv2.INTER_NEAREST)
        ws.append((cv2.warpAffine(s.valid.view(np.uint8), m, (CROP, CROP), flags=cv2.INTER_NEAREST) & inside))
    return torch.from_numpy(np.stack(ts))[:, None], torch.from_numpy(np.stack(ws).astype(np.float32))[:, None]


def amp_precision(device: torch.device) -> str:
    """Mixed precision on CUDA, chosen as the segmentation trainer chooses it; float32 elsewhere."""
    if device.type != "cuda":
        return "float32"
    from segstudio.ml.train_loop import resolve_precision

    return resolve_precision(SimpleNamespace(precision="auto"), device)


def train_click_model(
    bank: ObjectBank,
    out: str | Path | None,
    config: ClickTrainConfig | None = None,
    on_step: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model: ClickNet | None = None,
) -> tuple[ClickNet, ClickTrainResult]:
    """Train (or continue training `model`) and save to `out` (when given)."""
    config = config or ClickTrainConfig()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, config.threads))
    from segstudio.ml.device import pick_device
    from segstudio.ml.train_loop import autocast_for

    device = pick_device(config.device)
    precision = amp_precision(device)  # float32 on a CPU: AMP only where it pays (CUDA)
    amp = autocast_for(precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    model = (model or ClickNet(width=config.width, prior=config.prior)).to(device)
    use_seg = config.seg_evidence and bank.has_evidence
    predictor = ClickPredictor(
        model,
        use_prev=config.use_prev,
        seg_evidence=use_seg,
        proposal=config.proposal and use_seg,
        colour_fallback=config.colour_fallback,
        per_click=config.per_click,
        misnamed=config.misnamed and use_seg,
        max_aspect=config.max_aspect,
        focus=config.focus,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    start = time.perf_counter()
    result = ClickTrainResult(None, 0, 0.0, images=len(bank.frames), objects=len(bank.objects))
    try:
        for step in range(config.steps):
            if should_stop is not None and should_stop():
                result.reason = "cancelled"
                break
            if config.time_budget_s is not None and time.perf_counter() - start > config.time_budget_s:
                result.reason = "time_budget"
                break
            states = []
            for _ in range(config.batch):
                frame, cls, obj = bank.objects[rng.randrange(len(bank.objects))]
                image, mask = bank.frames[frame]
                seg = bank.evidence[frame] if use_seg else None
                if rng.random() < 0.5:  # horizontal flip
                    image, mask, obj = image[:, ::-1].copy(), mask[:, ::-1].copy(), obj[:, ::-1].copy()
                    seg = bank.flipped_evidence(frame) if seg is not None else None
                missed = None if seg is None else obj & (seg.labels != cls)
                click = _first_click(obj, rng, missed, config.error_first)
                states.append(
                    _State(image, obj, mask != VOID, [click], [], np.zeros(obj.shape, bool), seg, cls)
                )
            rounds = rng.randint(0, config.max_iters) if config.max_iters else 0
            if rounds:
                model.eval()
                with torch.no_grad(), amp():
                    for _ in range(rounds):
                        x, windows, fed = _batch(states, predictor, device)
                        answers = _answers(model, x, windows, fed)
                        if predictor.focus:  # the second pass, as at inference
                            _refine(model, states, predictor, answers, windows, device)
                        for s, answer in zip(states, answers, strict=True):
                            s.prev = answer
                            click = next_click(s.prev, s.obj, s.valid)
                            if click is not None:
                                (s.pos if click[2] else s.neg).append(click[:2])
                                s.latest = click
            x, windows, fed = _batch(states, predictor, device)
            if predictor.focus:
                x = _train_focus_pass(model, states, predictor, x, windows, fed, rng, amp, device)
            model.train()
            target, weight = (t.to(device) for t in _targets(states, windows))
            with amp():
                logits = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(), target, weight=weight, reduction="sum"
            )
            loss = loss / weight.sum().clamp_min(1.0)
            model.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            for group in optimizer.param_groups:  # linear decay
                group["lr"] = config.lr * max(0.05, 1 - step / config.steps)
            scaler.step(optimizer)
            scaler.update()
            result.losses.append(float(loss.detach()))
            result.steps = step + 1
            if on_step is not None:
                on_step(step + 1, result.losses[-1])
        else:
            result.reason = "completed"
        model = model.cpu().eval()  # callers predict on the CPU (the GUI's engine moves it again)
        result.seconds = time.perf_counter() - start
        if out is not None and result.steps:
            info = {
                "steps": result.steps,
                "seconds": round(result.seconds, 1),
                "train_images": result.images,
                "objects": result.objects,
                "max_iters": config.max_iters,
                "use_prev": config.use_prev,
                "seg_evidence": use_seg,
                "proposal": config.proposal and use_seg,
                "colour_fallback": config.colour_fallback,
                "per_click": config.per_click,
                "misnamed": config.misnamed and use_seg,
                "max_aspect": config.max_aspect,
                "focus": config.focus,
            }
            result.path = save_click_model(out, model, info)
    finally:
        torch.set_num_threads(previous_threads)
    return model, result
