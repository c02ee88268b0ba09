"""Learn the dense CRF's parameters from the user's corrected images (the DeepLab recipe, on their data).

DeepLab cross-validated the CRF's kernel weights and widths on held-out images; the best values depend
on the network (how coarse its probabilities are) and on the photos. Here the search runs on done images
that have stored probabilities (`core.probabilities`) against their corrected masks:
  * the images are split deterministically (by key) into a tuning part and a held-out part (1 in 3);
  * a search over `SEARCH_SPACE` (the three bilateral parameters on their joint grid, then the others one
    at a time) maximises mIoU on the tuning part (boundary accuracy breaks ties);
  * the decision is made on the held-out part only, as model selection decides (`ml.selection`): the
    tuned settings are kept only if their mIoU gain over "no CRF" on those images is positive beyond
    its uncertainty (a paired bootstrap over the held-out images, 95 %); otherwise the CRF is turned
    off for the project and the report says why. A CRF that measured +0.0 mIoU (0.461 -> 0.461) is
    not worth its cost on every later prediction, and one that measured worse is never saved.
Boundary accuracy = pixel accuracy in a band of `BOUNDARY_RADIUS` px around the true class boundaries,
where a CRF acts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from segstudio.core.hashing import stable_fraction
from segstudio.core.metrics import SegmentationMetrics, confusion_matrix
from segstudio.core.task_handle import NullTask, TaskHandle
from segstudio.ml.crf import CRFParams, refine, upsampled_labels
from segstudio.ml.selection import Estimate, gain_estimate

__all__ = [
    "BOUNDARY_RADIUS",
    "SEARCH_SPACE",
    "CRFScore",
    "ScoreAccumulator",
    "TuneReport",
    "TuneSample",
    "boundary_band",
    "decide",
    "labels_for",
    "score",
    "search",
    "split_keys",
    "tune",
]

BOUNDARY_RADIUS = 5
JOINT = ("bilateral_compat", "bilateral_sxy", "bilateral_srgb")  # searched together (see `search`)
#: values tried per parameter (DeepLab cross-validated bilateral weight 3-6, sxy 30-100, srgb 3-6; here wider)
SEARCH_SPACE: dict[str, tuple[float, ...]] = {
    "bilateral_compat": (0.0, 3.0, 5.0, 10.0),
    "bilateral_sxy": (20.0, 40.0, 67.0, 100.0),
    "bilateral_srgb": (3.0, 5.0, 13.0),
    "gaussian_compat": (0.0, 3.0),
    "gaussian_sxy": (1.0, 3.0),
    "iterations": (5, 10),
    "scale": (2.0, 4.0),
}


@dataclass(frozen=True)
class TuneSample:
    key: str  # stable identity (e.g. the image's path in the project): decides the held-out split
    image: np.ndarray  # (H, W, 3) uint8 RGB
    probabilities: np.ndarray  # (C, h, w) float32, any size
    truth: np.ndarray  # (H, W) uint8, 255 = void


@dataclass(frozen=True)
class CRFScore:
    miou: float
    per_class_iou: list[float | None]
    boundary_accuracy: float
    images: int

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        per_class: Any = self.per_class_iou
        if class_names is not None:
            per_class = {name: v for name, v in zip(class_names, self.per_class_iou)}
        return {
            "miou": self.miou,
            "boundary_accuracy": self.boundary_accuracy,
            "images": self.images,
            "per_class_iou": per_class,
        }


def boundary_band(truth: np.ndarray, radius: int = BOUNDARY_RADIUS) -> np.ndarray:
    """Labelled pixels within `radius` px of a change of true class (void is not a class)."""
    labelled = np.where(truth == 255, 0, truth)
    edges = cv2.morphologyEx(labelled, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    band = cv2.dilate(edges.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)) > 0
    return band & (truth != 255)


def labels_for(sample: TuneSample, params: CRFParams | None) -> np.ndarray:
    """Labels at the truth's size: the CRF's, or the plain argmax when `params` is None or disabled."""
    if params is None or not params.enabled:
        return upsampled_labels(sample.probabilities, *sample.truth.shape)
    return refine(sample.image, sample.probabilities, params)


class ScoreAccumulator:
    """Adds up predictions image by image (so a caller can stream images) into a `CRFScore`; keeps each
    image's confusion matrix for the paired bootstrap of the decision (`per_image`)."""

    def __init__(self, num_classes: int) -> None:
        self.cm = np.zeros((num_classes, num_classes), np.int64)
        self.matrices: list[np.ndarray] = []
        self.hits = self.total = self.images = 0

    @property
    def per_image(self) -> np.ndarray:
        """(images, C, C) confusion matrices, in the order the images were added."""
        c = self.cm.shape[0]
        return np.stack(self.matrices) if self.matrices else np.zeros((0, c, c), np.int64)

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        cm = confusion_matrix(pred, truth, self.cm.shape[0])
        self.matrices.append(cm)
        self.cm += cm
        band = boundary_band(truth)
        self.hits += int((pred[band] == truth[band]).sum())
        self.total += int(band.sum())
        self.images += 1

    def result(self) -> CRFScore:
        metrics = SegmentationMetrics.from_confusion(self.cm)
        per_class = [None if not np.isfinite(v) else round(float(v), 5) for v in metrics.per_class_iou]
        miou = float(metrics.miou) if np.isfinite(metrics.miou) else 0.0
        boundary = round(self.hits / self.total, 5) if self.total else 0.0
        return CRFScore(round(miou, 5), per_class, boundary, self.images)


def score(
    samples: Sequence[TuneSample],
    params: CRFParams | None,
    num_classes: int,
    handle: TaskHandle | None = None,
) -> CRFScore:
    """mIoU (one confusion matrix over all samples), per-class IoU and boundary accuracy; None = no CRF."""
    return _accumulate(samples, params, num_classes, handle).result()


def _accumulate(
    samples: Sequence[TuneSample], params: CRFParams | None, num_classes: int, handle: TaskHandle | None
) -> ScoreAccumulator:
    acc = ScoreAccumulator(num_classes)
    for sample in samples:
        if handle is not None:
            handle.check_cancelled()
        acc.add(labels_for(sample, params), sample.truth)
    return acc


def decide(gain: Estimate) -> tuple[bool, str]:
    """(keep the tuned CRF, why not): keep only a held-out gain that is positive beyond its ±."""
    if gain.value is None:
        return False, "the held-out images have no labelled pixels to judge on"
    if gain.plus_minus is None:
        return False, "one held-out image cannot measure the uncertainty of the gain; mark more images done"
    if gain.value - gain.plus_minus > 0:
        return True, ""
    if gain.value <= 0:
        return False, "no setting beat 'no CRF' on the held-out images"
    return False, "the gain is within its uncertainty (more done images would tell)"


def split_keys(keys: Sequence[str], held_out_every: int = 3) -> tuple[list[int], list[int]]:
    """(tuning indices, held-out indices): every `held_out_every`-th key in hash order is held out
    (at least one when there are two or more), the same split on every run."""
    order = sorted(range(len(keys)), key=lambda i: stable_fraction(keys[i]))
    held = order[::held_out_every] if len(keys) >= 2 else []
    tuning = [i for i in order if i not in held]
    return sorted(tuning), sorted(held)


def _key(value: CRFScore) -> tuple[float, float]:
    return (value.miou, value.boundary_accuracy)


def _with(params: CRFParams, name: str, value: float) -> CRFParams:
    return replace(params, **{name: int(value) if name == "iterations" else float(value)})


def search(
    samples: Sequence[TuneSample],
    start: CRFParams,
    num_classes: int,
    handle: TaskHandle | None = None,
    space: dict[str, tuple[float, ...]] | None = None,
    rounds: int = 2,
) -> tuple[CRFParams, CRFScore]:
    """Best settings on `samples`: the bilateral weight, width and colour range (`JOINT`, which trade off
    against each other, so one at a time gets stuck) over their full grid, then the other parameters
    one at a time (coordinate search, up to `rounds` rounds)."""
    space = SEARCH_SPACE if space is None else space
    seen: dict[CRFParams, CRFScore] = {}

    def evaluate(params: CRFParams) -> CRFScore:
        if params not in seen:
            seen[params] = score(samples, params, num_classes, handle)
            if handle is not None:
                handle.set_progress(len(seen), total)
        return seen[params]

    joint = [name for name in JOINT if name in space]
    others = [name for name in space if name not in joint]
    grid = [replace(start, enabled=True)]
    for name in joint:
        grid = [_with(params, name, value) for params in grid for value in space[name]]
    total = len(grid) + rounds * sum(len(space[name]) for name in others)
    best = max(grid, key=lambda params: _key(evaluate(params)))
    for _ in range(rounds):
        before = best
        for name in others:
            candidate = max((_with(best, name, v) for v in space[name]), key=lambda p: _key(evaluate(p)))
            if _key(evaluate(candidate)) > _key(evaluate(best)):
                best = candidate
        if best == before:
            break
    return best, evaluate(best)


@dataclass
class TuneReport:
    tuning_images: int
    held_out_images: int
    none: CRFScore  # held-out scores
    current: CRFScore | None
    tuned: CRFScore
    tuned_params: CRFParams
    gain_estimate: Estimate  # held-out mIoU gain of the tuned CRF over no CRF, paired bootstrap ±
    keep: bool  # the gain is positive beyond its ± (`decide`)
    reason: str = ""  # why the CRF stays off (empty when kept)
    notes: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float:
        """Held-out mIoU of the tuned CRF minus no CRF (in IoU points x 100 for messages)."""
        return self.tuned.miou - self.none.miou

    def gain_text(self) -> str:
        """ "+2.1 ± 0.8 mIoU points on 4 held-out images" (the ± is the 95 % paired-bootstrap half-width)."""
        est = self.gain_estimate
        if est.value is None:
            return "no measurable gain"
        pm = "" if est.plus_minus is None else f" ± {100 * est.plus_minus:.1f}"
        return f"{100 * est.value:+.1f}{pm} mIoU points on {est.n} held-out image(s)"

    def summary(self) -> str:
        head = f"CRF tuned on {self.tuning_images} corrected image(s), judged on {self.held_out_images} held out; "
        if self.keep:
            return (
                head + f"{self.gain_text()} vs no CRF ({self.none.miou:.3f} -> {self.tuned.miou:.3f}), "
                "beyond its uncertainty: saved"
            )
        return head + (
            f"{self.gain_text()} vs no CRF ({self.none.miou:.3f} vs best {self.tuned.miou:.3f}); "
            f"{self.reason}: CRF turned off for this project"
        )

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        return {
            "tuning_images": self.tuning_images,
            "held_out_images": self.held_out_images,
            "keep": self.keep,
            "gain": self.gain_estimate.to_dict(),
            "reason": self.reason,
            "held_out": {
                "no_crf": self.none.to_dict(class_names),
                "current": None if self.current is None else self.current.to_dict(class_names),
                "tuned": self.tuned.to_dict(class_names),
            },
            "tuned_params": self.tuned_params.to_dict(),
            "summary": self.summary(),
            "notes": self.notes,
        }


def tune(
    samples: Sequence[TuneSample],
    current: CRFParams | None,
    num_classes: int,
    handle: TaskHandle | None = None,
    space: dict[str, tuple[float, ...]] | None = None,
    rounds: int = 2,
) -> TuneReport:
    """Search on the tuning part, decide on the held-out part (see the module docstring)."""
    handle = handle or NullTask()
    if len(samples) < 2:
        raise ValueError("tuning needs at least 2 corrected images with stored probabilities")
    tuning_idx, held_idx = split_keys([s.key for s in samples])
    tuning, held = [samples[i] for i in tuning_idx], [samples[i] for i in held_idx]
    start = current if current is not None else CRFParams()
    handle.set_status(f"tuning the CRF on {len(tuning)} image(s)")
    params, _ = search(tuning, start, num_classes, handle, space, rounds)
    handle.set_status(f"judging on {len(held)} held-out image(s)")
    none = _accumulate(held, None, num_classes, handle)
    tuned = _accumulate(held, params, num_classes, handle)
    now = score(held, current, num_classes, handle) if current is not None and current.enabled else None
    gain = gain_estimate(none.per_image, tuned.per_image)
    keep, reason = decide(gain)
    return TuneReport(len(tuning), len(held), none.result(), now, tuned.result(), params, gain, keep, reason)
