"""Validation: a model's confusion matrix over whole images, summed across ranks, and its metrics.

Evaluation runs on full images (long side capped like training, logits upsampled back to the mask's
full resolution), so the numbers describe what the annotator gets on their images, not on crops.
Under torchrun each rank takes every world_size-th image (no padding duplicates, unlike
DistributedSampler) and the matrices are all-reduced, so the metrics are exact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from segstudio.ml.augment import IGNORE_INDEX
from segstudio.ml.distributed import DistContext

__all__ = ["confusion_matrix_torch", "evaluate", "metrics_record"]


def confusion_matrix_torch(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) int64 counts, rows = target, cols = prediction; 255 and out-of-range targets ignored.

    Same convention as `core.metrics.confusion_matrix`, computed on the tensors' device (no copy to
    the host per image on a GPU).
    """
    target = target.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = (target >= 0) & (target < num_classes) & (target != IGNORE_INDEX)
    index = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _collate_one(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    image, mask = batch[0]
    return image.unsqueeze(0), mask.unsqueeze(0)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    device: torch.device,
    dist: DistContext | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    workers: int = 0,
    channels_last: bool = False,
    per_image: bool = False,
) -> np.ndarray:
    """The summed confusion matrix of `model` over `dataset` (items: normalised image, full-size mask);
    with `per_image`, one matrix per image ((N, C, C), for uncertainty estimates) instead."""
    dist = dist or DistContext()
    was_training = model.training
    model.eval()
    indices: Sequence[int] = range(dist.rank, len(dataset), dist.world_size)  # type: ignore[arg-type]
    loader = DataLoader(
        Subset(dataset, list(indices)),
        batch_size=1,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate_one,
    )
    cms = torch.zeros(len(dataset), num_classes, num_classes, dtype=torch.int64, device=device)  # type: ignore[arg-type]
    for index, (image, mask) in zip(indices, loader):
        image = image.to(device, non_blocking=True)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        mask = mask.to(device, non_blocking=True)
        with autocast():
            logits = model(image)["out"]
        if logits.shape[-2:] != mask.shape[-2:]:
            logits = F.interpolate(logits.float(), size=mask.shape[-2:], mode="bilinear", align_corners=False)
        cms[index] = confusion_matrix_torch(logits.argmax(1), mask, num_classes)
    dist.all_reduce_sum(cms)  # each rank filled its own images' rows: the sum is every image once
    model.train(was_training)
    return cms.cpu().numpy() if per_image else cms.sum(0).cpu().numpy()


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def metrics_record(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """The JSON-able metrics of a confusion matrix (core.metrics does the arithmetic)."""
    from segstudio.core.metrics import SegmentationMetrics

    m = SegmentationMetrics.from_confusion(np.asarray(cm))
    ious = np.asarray(m.per_class_iou, dtype=np.float64)
    return {
        "pixel_accuracy": _num(m.pixel_accuracy),
        "mean_pixel_accuracy": _num(m.mean_pixel_accuracy),
        "miou": _num(m.miou),
        "fwiou": _num(m.fwiou),
        "per_class_iou": {name: _num(iou) for name, iou in zip(class_names, ious)},
        "labelled_pixels": int(np.asarray(cm).sum()),
    }
