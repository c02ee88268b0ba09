"""Model selection with few corrected images: how sure a val mIoU is, and whether a run beat its start.

Why: with 20 done images a 20 % val split is 4 frames, and the mIoU of 4 frames swings by several
points from one frame to the next (a run judged 44.6 -> 39.6 % on 4 frames was +3.0 points on 19
held-out frames of the same scenes). Two remedies, both here:

* the val split has a minimum size (`reserve_val_images`): done images are pinned to val until it
  holds `MIN_VAL_IMAGES` (at most a third of the done images), preferring images marked done after
  the newest model version, so the starting model has not trained on them;
* every estimate carries its uncertainty: a bootstrap over val images of the per-image confusion
  matrices gives "mIoU 47.1 ± 3.2 % on 8 images" and, paired with the starting model on the same
  images, "gain +2.5 ± 3.1 points".

Numpy only (no torch, no Qt): the trainer, the CLI and the GUI panel share these rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segstudio.core.hashing import stable_fraction

__all__ = [
    "MIN_VAL_IMAGES",
    "Estimate",
    "batched_miou",
    "beats_start",
    "format_estimate",
    "gain_estimate",
    "keeps_version",
    "miou_estimate",
    "reserve_val_images",
    "val_target",
]

#: the val split is topped up to this many images (when the project has 3x as many done images)
MIN_VAL_IMAGES = 8
_REPS = 1000
_LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A value with the half-width of its 95 % bootstrap interval, measured on `n` images."""

    value: float | None
    plus_minus: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "plus_minus": self.plus_minus, "n": self.n}


def batched_miou(cms: np.ndarray) -> np.ndarray:
    """mIoU of each (C, C) matrix in a (..., C, C) stack; classes absent from target and prediction skipped
    (the same rule as `core.metrics.SegmentationMetrics.miou`)."""
    cms = np.asarray(cms, dtype=np.float64)
    diag = np.diagonal(cms, axis1=-2, axis2=-1)
    union = cms.sum(-1) + cms.sum(-2) - diag
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, diag / union, np.nan)
    present = (union > 0).sum(-1)
    total = np.nansum(iou, axis=-1)
    return np.where(present > 0, total / np.maximum(present, 1), np.nan)


def _boot_sums(per_image: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """(reps, C, C) sums of bootstrap resamples of the images, as resample counts times the matrices
    (one matrix product; indexing would copy reps x N matrices)."""
    n, c = per_image.shape[0], per_image.shape[-1]
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=reps).astype(np.float64)
    return (counts @ per_image.reshape(n, c * c).astype(np.float64)).reshape(reps, c, c)


def _half_width(samples: np.ndarray) -> float | None:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    low, high = np.quantile(samples, [(1 - _LEVEL) / 2, (1 + _LEVEL) / 2])
    return float(high - low) / 2


def miou_estimate(per_image: np.ndarray, reps: int = _REPS, seed: int = 0) -> Estimate:
    """mIoU of the summed matrices and its bootstrap uncertainty over images ((N, C, C) input)."""
    per_image = np.asarray(per_image)
    n = int(per_image.shape[0])
    if n == 0:
        return Estimate(None, None, 0)
    value = float(batched_miou(per_image.sum(0)))
    boot = batched_miou(_boot_sums(per_image, reps, seed))
    return Estimate(value if np.isfinite(value) else None, _half_width(boot) if n > 1 else None, n)


def gain_estimate(start: np.ndarray, new: np.ndarray, reps: int = _REPS, seed: int = 0) -> Estimate:
    """mIoU(new) - mIoU(start) on the same images, with a paired bootstrap (both resampled alike)."""
    start, new = np.asarray(start), np.asarray(new)
    if start.shape != new.shape:
        raise ValueError(f"per-image matrices differ in shape: {start.shape} vs {new.shape}")
    n = int(start.shape[0])
    if n == 0:
        return Estimate(None, None, 0)
    value = float(batched_miou(new.sum(0)) - batched_miou(start.sum(0)))
    boot = batched_miou(_boot_sums(new, reps, seed)) - batched_miou(
        _boot_sums(start, reps, seed)
    )  # same seed: paired
    return Estimate(value if np.isfinite(value) else None, _half_width(boot) if n > 1 else None, n)


def beats_start(best_miou: float | None, baseline_miou: float | None) -> bool | None:
    """Whether the run's best model is at least as good as its starting model on the same val images
    (None: not measured, e.g. no val split or no validation yet)."""
    if best_miou is None or baseline_miou is None:
        return None
    return best_miou >= baseline_miou


def keeps_version(reason: str, best_miou: float | None, baseline_miou: float | None) -> bool:
    """Whether a finished run's checkpoint becomes a model version: a cancelled run only if it improved
    on its start (or nothing could tell: no val split), every other run always (kept, not activated)."""
    return reason != "cancelled" or beats_start(best_miou, baseline_miou) is not False


def val_target(done: int, minimum: int = MIN_VAL_IMAGES) -> int:
    """How many of `done` images the val split should hold at least: `minimum`, but never over a third."""
    return max(0, min(minimum, done // 3))


def _rank(content_hash: str) -> float:
    return stable_fraction(content_hash, salt="segstudio-val:")


def reserve_val_images(project: Any, minimum: int = MIN_VAL_IMAGES) -> list[str]:
    """Pin done train images to val until val holds `val_target` images; returns the moved rel_paths.

    Images marked done after the newest model version go first (no version trained on them), then a
    stable pseudo-random order, so repeated runs keep the same val images.
    """
    from segstudio.core.project import Status

    done = [r for r in project.images(status=Status.DONE) if not r.error]
    val = sum(r.split == "val" for r in done)
    missing = val_target(len(done), minimum) - val
    if missing <= 0:
        return []
    newest = max((v.created_at for v in project.model_versions()), default=float("-inf"))
    train = [r for r in done if r.split == "train"]
    train.sort(key=lambda r: (r.updated_at <= newest, _rank(r.content_hash)))
    moved = train[:missing]
    for rec in moved:
        project.set_split(rec, "val")
    return [r.rel_path for r in moved]


def format_estimate(estimate: Estimate | dict[str, Any] | None, signed: bool = False) -> str:
    """'47.1 ± 3.2 % on 8 images' (or '+2.5 ± 3.1 points on 8 images' with `signed`); 'n/a' when unknown."""
    if isinstance(estimate, dict):
        estimate = Estimate(estimate.get("value"), estimate.get("plus_minus"), int(estimate.get("n") or 0))
    if estimate is None or estimate.value is None:
        return "n/a"
    value = f"{100 * estimate.value:+.1f}" if signed else f"{100 * estimate.value:.1f}"
    spread = f" ± {100 * estimate.plus_minus:.1f}" if estimate.plus_minus is not None else ""
    unit = " points" if signed else " %"
    images = "image" if estimate.n == 1 else "images"
    return f"{value}{spread}{unit} on {estimate.n} {images}"
