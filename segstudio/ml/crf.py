"""Fully connected CRF refinement (Krähenbühl & Koltun 2011, as used by DeepLab) through pydensecrf.

Unary = -log(softmax probabilities); pairwise = a Gaussian smoothness kernel (sxy 3, compat 3) plus
a bilateral appearance kernel (sxy 80, srgb 13, compat 10), 5 mean-field iterations by default.

Reduced-resolution mode (`scale` > 1) runs the CRF on an image downscaled by `scale`, with the
spatial kernel widths divided by `scale` so they cover the same part of the scene, then upsamples the
refined probabilities. `max_pixels` raises the scale automatically for huge images so memory stays
bounded (pydensecrf keeps several float32 arrays of classes x pixels). The agreement of the reduced
mode with the full-resolution CRF is measured by `bench/inference.py` (see README).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import SegStudioError
from segstudio.core.tasks import TaskHandle

__all__ = ["CRFError", "CRFParams", "SETTING_KEY", "refine", "refine_probabilities", "load_params", "save_params"]

SETTING_KEY = "crf"


class CRFError(SegStudioError):
    """Invalid CRF parameters."""


@dataclass(frozen=True)
class CRFParams:
    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    scale: float = 1.0  # run at 1/scale resolution (1 = full)
    max_pixels: int = 4_000_000  # above this (after `scale`) the scale is raised to fit
    enabled: bool = True

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.iterations, int) and 1 <= self.iterations <= 50, "iterations must be 1-50"),
            (self.gaussian_sxy > 0 and self.bilateral_sxy > 0, "kernel widths (sxy) must be > 0"),
            (self.bilateral_srgb > 0, "bilateral_srgb must be > 0"),
            (self.gaussian_compat >= 0 and self.bilateral_compat >= 0, "compat weights must be >= 0"),
            (1.0 <= self.scale <= 16.0, "scale must be between 1 (full resolution) and 16"),
            (isinstance(self.max_pixels, int) and self.max_pixels >= 1024, "max_pixels must be an integer >= 1024"),
        ]
        for ok, message in checks:
            if not ok:
                raise CRFError(f"invalid CRF parameters: {message} (got {self})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CRFParams:
        if not isinstance(data, dict):
            raise CRFError("CRF settings must be a JSON object")
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise CRFError(f"unknown CRF setting(s) {sorted(unknown)}; allowed: {', '.join(known)}")
        try:
            values = {
                k: (int(v) if k in ("iterations", "max_pixels") else bool(v) if k == "enabled" else float(v))
                for k, v in data.items()
            }
        except (TypeError, ValueError) as error:
            raise CRFError(f"bad CRF setting value: {error}") from None
        return cls(**values)

    def effective_scale(self, height: int, width: int) -> float:
        """`scale`, raised just enough that the CRF grid has at most `max_pixels` pixels."""
        needed = math.sqrt(height * width / self.max_pixels)
        return max(self.scale, needed, 1.0)


def load_params(project: Any) -> CRFParams:
    """The project's saved CRF settings (defaults when none are saved)."""
    data = project.get_setting(SETTING_KEY, None)
    return CRFParams() if data is None else CRFParams.from_dict(data)


def save_params(project: Any, params: CRFParams) -> None:
    project.set_setting(SETTING_KEY, params.to_dict())


def _resize_chw(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    if probs.shape[1:] == (height, width):
        return probs
    out = np.empty((probs.shape[0], height, width), dtype=np.float32)
    # cv2 handles at most 512 channels per call; do them in groups.
    for start in range(0, probs.shape[0], 256):
        block = np.ascontiguousarray(np.moveaxis(probs[start : start + 256], 0, -1))
        resized = cv2.resize(block, (width, height), interpolation=cv2.INTER_LINEAR)
        out[start : start + 256] = resized.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def refine_probabilities(
    image: np.ndarray,
    probabilities: np.ndarray,
    params: CRFParams = CRFParams(),
    handle: TaskHandle | None = None,
) -> np.ndarray:
    """Refined (C, h, w) float32 marginals on the CRF grid (the image size divided by the effective scale).

    `image` is HxWx3 uint8 RGB; `probabilities` (C, H', W') may have any size (e.g. the network's
    working resolution) and are resized to the CRF grid. Cancels between mean-field iterations.
    """
    import pydensecrf.densecrf as dcrf

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CRFError(f"CRF needs an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    scale = params.effective_scale(height, width)
    h, w = max(1, round(height / scale)), max(1, round(width / scale))
    small = image if (h, w) == (height, width) else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    probs = _resize_chw(probabilities.astype(np.float32, copy=False), h, w)
    num_classes = probs.shape[0]
    unary = -np.log(np.clip(probs, 1e-5, 1.0)).reshape(num_classes, -1)
    crf = dcrf.DenseCRF2D(w, h, num_classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy / scale, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy / scale,
        srgb=params.bilateral_srgb,
        rgbim=small if small.flags.c_contiguous and small.flags.writeable else np.array(small, order="C"),
        compat=params.bilateral_compat,
    )
    q, tmp1, tmp2 = crf.startInference()
    for _ in range(params.iterations):
        if handle is not None:
            handle.check_cancelled()
        crf.stepInference(q, tmp1, tmp2)
    return np.asarray(q, dtype=np.float32).reshape(num_classes, h, w)


def refine(
    image: np.ndarray,
    probabilities: np.ndarray,
    params: CRFParams = CRFParams(),
    handle: TaskHandle | None = None,
) -> np.ndarray:
    """CRF-refined HxW uint8 labels at the image's resolution."""
    q = refine_probabilities(image, probabilities, params, handle)
    height, width = image.shape[:2]
    return _resize_chw(q, height, width).argmax(axis=0).astype(np.uint8)
