"""Joint image + mask transforms for training and evaluation (torchvision.transforms.v2).

Why v2: it transforms an image and its `tv_tensors.Mask` together (nearest-neighbour for the mask,
colour jitter for the image only, a separate pad fill for each), so we only add the one transform it
lacks: a random scale *relative to the image's own size*, because project images come in any size
and torchvision's absolute `RandomResize` assumes a dataset of similar-sized photos.

Both pipelines first cap the long side at `max_side` (the same cap evaluation uses), so training and
validation see objects at the same scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from segstudio.core.schemes import UNLABELED

__all__ = [
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AugmentConfig",
    "RandomScale",
    "capped_size",
    "eval_transform",
    "to_tv",
    "train_transform",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: The loss ignores unlabeled pixels (255, also what padding fills in): the same value as the masks use.
IGNORE_INDEX = UNLABELED


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 384
    scale_min: float = 0.5
    scale_max: float = 2.0
    hflip: float = 0.5
    #: brightness/contrast/saturation jitter. Light: annotators' photos vary mildly.
    jitter: float = 0.2
    max_side: int = 1024
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def capped_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) scaled down so the long side is at most `max_side` (never scaled up)."""
    scale = min(1.0, max_side / max(height, width)) if max_side > 0 else 1.0
    return max(1, round(height * scale)), max(1, round(width * scale))


class RandomScale(v2.Transform):
    """Resize image and mask by a random factor in [lo, hi] of their (capped) size; mask nearest."""

    def __init__(self, lo: float, hi: float, max_side: int = 0) -> None:
        super().__init__()
        self.lo, self.hi, self.max_side = lo, hi, max_side

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        h, w = capped_size(height, width, self.max_side)
        factor = float(torch.empty(()).uniform_(self.lo, self.hi))  # torch RNG: seeded per DataLoader worker
        return {"size": [max(1, round(h * factor)), max(1, round(w * factor))]}

    def transform(self, inpt, params: dict):
        if isinstance(inpt, tv_tensors.Mask):
            return TF.resize(inpt, params["size"], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        if isinstance(inpt, tv_tensors.Image):
            return TF.resize(inpt, params["size"], antialias=True)
        return inpt


class _CapSize(v2.Transform):
    """Evaluation: cap the image's long side; the mask stays at full resolution (metrics are on it)."""

    def __init__(self, max_side: int) -> None:
        super().__init__()
        self.max_side = max_side

    def transform(self, inpt, params: dict):
        if isinstance(inpt, tv_tensors.Image):
            h, w = inpt.shape[-2:]
            size = capped_size(h, w, self.max_side)
            if size != (h, w):
                return TF.resize(inpt, list(size), antialias=True)
        return inpt


def _finish(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [
        v2.ToDtype(
            {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True
        ),
        v2.Normalize(list(mean), list(std)),
    ]


def train_transform(config: AugmentConfig) -> v2.Compose:
    """Random scale, crop (mask padded with 255 = ignored), flip, light colour jitter, normalise."""
    steps: list[v2.Transform] = [
        RandomScale(config.scale_min, config.scale_max, config.max_side),
        v2.RandomCrop(
            config.crop, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}
        ),
    ]
    if config.hflip > 0:
        steps.append(v2.RandomHorizontalFlip(config.hflip))
    if config.jitter > 0:
        j = config.jitter
        # no hue jitter: it costs 5x the other three together (an RGB->HSV round trip per crop) and
        # annotators' photos vary in exposure and white balance far more than in hue
        steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j))
    return v2.Compose(steps + _finish(config.mean, config.std))


def eval_transform(config: AugmentConfig) -> v2.Compose:
    """The whole image (long side capped), normalised; the mask untouched."""
    return v2.Compose([_CapSize(config.max_side), *_finish(config.mean, config.std)])


def to_tv(image: np.ndarray, mask: np.ndarray) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """HxWx3 uint8 RGB + HxW uint8 mask -> tv_tensors the transforms understand."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    # torch refuses to wrap read-only arrays silently; copies only happen for those (e.g. cached decodes)
    image = np.ascontiguousarray(image) if image.flags.writeable else image.copy()
    mask = np.ascontiguousarray(mask) if mask.flags.writeable else mask.copy()
    img = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
    return img, tv_tensors.Mask(torch.from_numpy(mask))
