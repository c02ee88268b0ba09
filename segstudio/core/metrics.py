"""Semantic-segmentation metrics from a confusion matrix (Long et al., FCN, 2015, section 5).

With n_ij = pixels of class i predicted as class j, t_i = sum_j n_ij (pixels of class i):

- pixel accuracy            sum_i n_ii / sum_i t_i
- mean pixel accuracy       (1/C') sum_i n_ii / t_i
- per-class IoU             n_ii / (t_i + sum_j n_ji - n_ii)
- mean IoU                  (1/C') sum_i IoU_i
- frequency-weighted IoU    (sum_k t_k)^-1 sum_i t_i IoU_i

Classes absent from both target and prediction have an undefined IoU (NaN) and are left out of
the means (C' counts classes with a defined value), as the DeepLab/torchvision references do.
The matrix is additive, so per-image matrices can be summed (or all-reduced across ranks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SegmentationMetrics", "confusion_matrix"]


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """(C, C) int64 counts, rows = target class, columns = predicted class.

    Pixels whose target is `ignore_index` or outside 0..C-1 are not counted. A prediction outside
    0..C-1 on a counted pixel raises ValueError: it would have to count as a miss for its target
    class, which a (C, C) matrix cannot hold without falsifying the totals.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    if num_classes <= 0:
        raise ValueError("num_classes must be positive")
    t = target.reshape(-1).astype(np.int64, copy=False)
    p = pred.reshape(-1).astype(np.int64, copy=False)
    valid = (t != ignore_index) & (t >= 0) & (t < num_classes)
    bad = valid & ((p < 0) | (p >= num_classes))
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} predicted pixels have class values outside 0..{num_classes - 1} "
            f"(e.g. {int(p[bad][0])}); predictions must be class indices"
        )
    counts = np.bincount(t[valid] * num_classes + p[valid], minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


@dataclass(frozen=True)
class SegmentationMetrics:
    """The four FCN/DeepLab metrics; IoU of classes absent from target and prediction is NaN."""

    pixel_accuracy: float
    mean_pixel_accuracy: float
    per_class_iou: np.ndarray  # (C,) float64, NaN where undefined
    miou: float
    fwiou: float
    confusion: np.ndarray

    @classmethod
    def from_confusion(cls, cm: np.ndarray) -> SegmentationMetrics:
        cm = np.asarray(cm, dtype=np.float64)
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
            raise ValueError(f"a confusion matrix must be square, got shape {cm.shape}")
        diag = np.diag(cm)
        target_totals = cm.sum(axis=1)
        pred_totals = cm.sum(axis=0)
        total = cm.sum()
        union = target_totals + pred_totals - diag
        with np.errstate(divide="ignore", invalid="ignore"):
            per_class_acc = np.where(target_totals > 0, diag / target_totals, np.nan)
            iou = np.where(union > 0, diag / union, np.nan)
        pixel_accuracy = float(diag.sum() / total) if total > 0 else float("nan")
        mean_pixel_accuracy = float(np.nanmean(per_class_acc)) if np.any(target_totals > 0) else float("nan")
        miou = float(np.nanmean(iou)) if np.any(union > 0) else float("nan")
        present = target_totals > 0
        fwiou = float((target_totals[present] * iou[present]).sum() / total) if total > 0 else float("nan")
        return cls(pixel_accuracy, mean_pixel_accuracy, iou, miou, fwiou, cm.astype(np.int64))

    @classmethod
    def compute(
        cls, pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255
    ) -> SegmentationMetrics:
        return cls.from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))

    def to_dict(self, class_names: list[str] | None = None) -> dict[str, Any]:
        """JSON-ready: NaN becomes None; per-class IoU keyed by name when names are given."""

        def clean(value: float) -> float | None:
            return None if not np.isfinite(value) else float(value)

        per_class: dict[str, float | None] | list[float | None]
        values = [clean(v) for v in self.per_class_iou]
        if class_names is not None:
            per_class = {name: values[i] for i, name in enumerate(class_names[: len(values)])}
        else:
            per_class = values
        return {
            "pixel_accuracy": clean(self.pixel_accuracy),
            "mean_pixel_accuracy": clean(self.mean_pixel_accuracy),
            "miou": clean(self.miou),
            "fwiou": clean(self.fwiou),
            "per_class_iou": per_class,
        }
