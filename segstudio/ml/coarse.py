"""DCNN-like class probabilities made from a true mask, for measuring the CRF without a trained model.

Why: the CRF's value and its fast mode must be measured on real photos with truth, and what the CRF
sees from DeepLab is a coarse, smooth map: logits at output stride 8, bilinearly upsampled, softmax
after. `coarse_probabilities` makes that from the truth (one-hot at 1/stride, blurred, scaled by a
logit `gain`, optional noise), so the benchmark, the tests and the default-settings study share one
definition. Void (255) pixels take the nearest labelled class first: a network has no "void" output, and
a uniform distribution there would make every class look present.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from segstudio.core.schemes import UNLABELED

__all__ = ["coarse_probabilities"]


def coarse_probabilities(
    truth: np.ndarray,
    num_classes: int,
    *,
    stride: int = 8,
    blur: float = 1.5,
    gain: float = 8.0,
    noise: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """(num_classes, H/stride, W/stride) float32 softmax probabilities (the network's output grid)."""
    height, width = truth.shape
    void = truth == UNLABELED
    if void.all():
        raise ValueError("the truth mask has no labelled pixel")
    if void.any():
        nearest = ndimage.distance_transform_edt(void, return_distances=False, return_indices=True)
        truth = truth[tuple(nearest)]
    h, w = max(1, height // stride), max(1, width // stride)
    onehot = np.empty((h, w, num_classes), np.float32)
    for k in range(num_classes):
        onehot[..., k] = cv2.resize((truth == k).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    if blur > 0:
        onehot = cv2.GaussianBlur(onehot, (0, 0), blur).reshape(h, w, num_classes)
    logits = gain * onehot
    if noise > 0:
        logits += np.random.default_rng(seed).normal(0.0, noise, logits.shape).astype(np.float32)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.ascontiguousarray(probs.transpose(2, 0, 1), dtype=np.float32)
