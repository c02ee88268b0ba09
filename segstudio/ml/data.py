"""Datasets the trainer reads: manifest samples from disk or arrays in memory, plus class statistics.

Items are (normalised image tensor, int64 mask tensor) after the joint transforms of `ml.augment`;
decoded pairs can be cached because fine-tuning sets are small and decoding dominates on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segstudio.ml.augment import to_tv
from segstudio.ml.manifest import Sample

__all__ = [
    "ArrayDataset",
    "RepeatDataset",
    "SegmentationDataset",
    "balanced_class_weights",
    "class_pixel_counts",
]

Transform = Callable[[Any, Any], tuple[torch.Tensor, torch.Tensor]]


def _fit_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask saved for a differently decoded image size (e.g. a downscaled huge scan) is resized nearest."""
    if mask.shape == shape:
        return mask
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


class _PairDataset(Dataset):
    """Applies the joint transform to (image, mask) pairs; subclasses say where pairs come from."""

    def __init__(self, transform: Transform | None) -> None:
        self.transform = transform

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def mask(self, index: int) -> np.ndarray:
        return self.pair(index)[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.pair(index)
        img, msk = to_tv(image, mask)
        if self.transform is not None:
            img, msk = self.transform(img, msk)
        return img.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor).long()


class SegmentationDataset(_PairDataset):
    """Samples read from disk (core.images/core.masks); decoded pairs cached when `cache` (small sets)."""

    def __init__(
        self, samples: Sequence[Sample], transform: Transform | None = None, cache: bool = False
    ) -> None:
        super().__init__(transform)
        self.samples = list(samples)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        from segstudio.core.images import load_image
        from segstudio.core.masks import load_mask

        sample = self.samples[index]
        image = load_image(sample.image)
        mask = _fit_mask(load_mask(sample.mask), image.shape[:2])
        if self._cache is not None:
            self._cache[index] = (image, mask)
        return image, mask

    def mask(self, index: int) -> np.ndarray:
        from segstudio.core.masks import load_mask

        if self._cache is not None and index in self._cache:
            return self._cache[index][1]
        return load_mask(self.samples[index].mask)


class ArrayDataset(_PairDataset):
    """Pairs already in memory (tests, benchmarks, synthetic data)."""

    def __init__(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], transform: Transform | None = None
    ):
        super().__init__(transform)
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        self.images, self.masks = list(images), list(masks)

    def __len__(self) -> int:
        return len(self.images)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.masks[index]

    def mask(self, index: int) -> np.ndarray:
        return self.masks[index]


class RepeatDataset(Dataset):
    """A small set repeated so an epoch has at least `min_length` samples (a few corrected images
    still give whole batches, and random crops make the repeats different)."""

    def __init__(self, dataset: Dataset, min_length: int) -> None:
        self.dataset = dataset
        self.base_length = len(dataset)  # type: ignore[arg-type]
        self.repeats = max(1, math.ceil(min_length / max(1, self.base_length)))

    def __len__(self) -> int:
        return self.base_length * self.repeats

    def __getitem__(self, index: int):
        return self.dataset[index % self.base_length]


def class_pixel_counts(dataset: _PairDataset, num_classes: int) -> np.ndarray:
    """Labelled pixels per class over a dataset's masks (255 and out-of-range values not counted)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for index in range(len(dataset)):  # type: ignore[arg-type]
        values = np.bincount(dataset.mask(index).ravel(), minlength=256)
        counts += values[:num_classes]
    return counts


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse square-root frequency, mean 1 over the classes present (absent classes: 1).

    Why square root: full inverse frequency lets one rare class with a few pixels dominate the loss
    of a small fine-tuning set; the square root still lifts rare classes without that instability.
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.ones_like(counts)
    present = counts > 0
    if present.any():
        freq = counts[present] / counts[present].sum()
        raw = 1.0 / np.sqrt(freq)
        weights[present] = raw / raw.mean()
    return weights.astype(np.float32)
