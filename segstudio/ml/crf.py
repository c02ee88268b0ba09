"""Fully connected CRF refinement (Krähenbühl & Koltun 2011, as used by DeepLab) through pydensecrf.

Unary = -log(softmax probabilities); pairwise = a Gaussian smoothness kernel (sxy 3, compat 3) plus
a bilateral appearance kernel (sxy 20, srgb 3, compat 5: see `CRFParams`), 5 mean-field iterations.

Fast by default. The CRF runs on the image downscaled by `scale` (default 4; INTER_AREA) with the spatial
kernel widths divided by the same factor, so they cover the same part of the scene; small images keep at
least `min_pixels` (16 384) on the grid, so a 500x375 photo runs at ~1/3.4 and not 1/4; huge ones at most
`max_pixels` (131 072 = 512x256, the 2048x1024 grid: time and memory bounded; pydensecrf needs ~1 KB per
grid pixel for 19 classes). Why this is enough: the unary comes from a network at output stride
8-16, so the CRF only moves boundaries by a few pixels, and the refined marginals are smooth between
colour edges; bilinear upsampling of them agreed with full-resolution pydensecrf on 99.51 % of pixels
(median of 6 CamVid frames at 2048x1024, min 99.41 %) at 1/9 of its CPU time (`bench/crf.py`, same run).
Also measured and not kept: scale 3.5 (99.60 %, only 7.2x), a sharper downscale (INTER_LINEAR / NEAREST:
lower agreement), a wider Gaussian on the grid (+0.02 points), and a naive band-limited full-resolution
refinement on a mixed-density point set (slower and less exact).
Classes whose probability stays below `PRUNE_BELOW` everywhere are left out of the CRF (a class likely
nowhere gets almost no support from its neighbours), dividing the message-passing cost by up to
C / (classes present) when the network is confident.
Memory stays bounded for any image: the CRF grid is capped, and `refine` upsamples + argmaxes in row
bands instead of building C x H x W floats at full resolution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import SegStudioError
from segstudio.core.tasks import TaskHandle

__all__ = ["CRFError", "CRFParams", "PRUNE_BELOW", "SETTING_KEY", "crf_grid", "load_params", "refine",
           "refine_probabilities", "save_params", "upsampled_labels", "upsampled_labels_and_confidence"]

SETTING_KEY = "crf"
PRUNE_BELOW = 1e-3  # a class below this probability everywhere is left out of the CRF


class CRFError(SegStudioError):
    """Invalid CRF parameters."""


@dataclass(frozen=True)
class CRFParams:
    # Defaults: DeepLab's cross-validated colour range (srgb 3) and Gaussian (3/3) with a narrower, lighter
    # bilateral kernel (sxy 20, weight 5): of the published settings measured by `bench/crf_defaults.py` on
    # the CamVid and VOC photos, these lowered mIoU least (pydensecrf's 80/13/10 example: -10 to -15 points).
    # A new project still starts with the CRF off (`ml.crf_project`) until tuning shows it helps.
    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 20.0
    bilateral_srgb: float = 3.0
    bilateral_compat: float = 5.0
    scale: float = 4.0  # run at 1/scale resolution (1 = full); lowered for small images, see min_pixels
    max_pixels: int = 131_072  # above this (after `scale`) the scale is raised to fit (speed + memory)
    enabled: bool = True
    min_pixels: int = 16_384  # `scale` is lowered (not below 1) so the grid keeps at least this many pixels

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.iterations, int) and 1 <= self.iterations <= 50, "iterations must be 1-50"),
            (self.gaussian_sxy > 0 and self.bilateral_sxy > 0, "kernel widths (sxy) must be > 0"),
            (self.bilateral_srgb > 0, "bilateral_srgb must be > 0"),
            (self.gaussian_compat >= 0 and self.bilateral_compat >= 0, "compat weights must be >= 0"),
            (1.0 <= self.scale <= 16.0, "scale must be between 1 (full resolution) and 16"),
            (isinstance(self.max_pixels, int) and self.max_pixels >= 1024, "max_pixels must be an integer >= 1024"),
            (isinstance(self.min_pixels, int) and self.min_pixels >= 1, "min_pixels must be an integer >= 1"),
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
                k: (int(v) if k in ("iterations", "max_pixels", "min_pixels") else bool(v) if k == "enabled" else float(v))
                for k, v in data.items()
            }
        except (TypeError, ValueError) as error:
            raise CRFError(f"bad CRF setting value: {error}") from None
        return cls(**values)

    def effective_scale(self, height: int, width: int) -> float:
        """`scale`, lowered so the grid keeps `min_pixels`, raised so it has at most `max_pixels` pixels."""
        pixels = height * width
        wanted = min(self.scale, math.sqrt(pixels / self.min_pixels))
        return max(wanted, math.sqrt(pixels / self.max_pixels), 1.0)


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


def _kept_classes(probs: np.ndarray) -> np.ndarray:
    """Indices of the classes that reach `PRUNE_BELOW` somewhere (all of them if fewer than 2 do)."""
    peak = probs.reshape(probs.shape[0], -1).max(axis=1)
    kept = np.flatnonzero(peak >= PRUNE_BELOW)
    return kept if len(kept) >= 2 else np.arange(probs.shape[0])


def crf_grid(params: CRFParams, height: int, width: int) -> tuple[float, int, int]:
    """(scale, h, w): the grid the CRF runs on for an image of height x width."""
    scale = params.effective_scale(height, width)
    return scale, max(1, round(height / scale)), max(1, round(width / scale))


def refine_probabilities(
    image: np.ndarray,
    probabilities: np.ndarray,
    params: CRFParams = CRFParams(),
    handle: TaskHandle | None = None,
) -> np.ndarray:
    """Refined (C, h, w) float32 marginals on the CRF grid (`crf_grid`: the image divided by the effective scale).

    `image` is HxWx3 uint8 RGB; `probabilities` (C, H', W') may have any size (e.g. the network's
    working resolution) and are resized to the CRF grid. Pruned classes (see the module docstring)
    get 0. Cancels between mean-field iterations.
    """
    import pydensecrf.densecrf as dcrf

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CRFError(f"CRF needs an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    if probabilities.ndim != 3 or probabilities.shape[0] < 1:
        raise CRFError(f"CRF needs (classes, height, width) probabilities, got shape {probabilities.shape}")
    height, width = image.shape[:2]
    scale, h, w = crf_grid(params, height, width)
    small = image if (h, w) == (height, width) else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    num_classes = probabilities.shape[0]
    kept = _kept_classes(probabilities)
    # resize first, then drop classes: no full-size copy of the network's map (peak memory on huge images)
    probs = _resize_chw(np.asarray(probabilities, dtype=np.float32), h, w)
    probs = probs if len(kept) == num_classes else probs[kept]
    unary = -np.log(np.clip(probs, 1e-5, 1.0)).reshape(len(kept), -1)
    crf = dcrf.DenseCRF2D(w, h, len(kept))
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
    if len(kept) == num_classes:
        return np.asarray(q, dtype=np.float32).reshape(num_classes, h, w)
    out = np.zeros((num_classes, h, w), np.float32)
    out[kept] = np.asarray(q, dtype=np.float32).reshape(len(kept), h, w)
    return out


def _source_coords(size_out: int, size_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps (i0, i1, weight of i1) with cv2.resize's pixel-centre convention."""
    pos = np.clip((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0, size_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    return i0, np.minimum(i0 + 1, size_in - 1), (pos - i0).astype(np.float32)


def upsampled_labels_and_confidence(
    q: np.ndarray, height: int, width: int, band_values: int = 1 << 20
) -> tuple[np.ndarray, np.ndarray]:
    """argmax and round(255 * max) of (C, h, w) probabilities bilinearly upsampled to height x width,
    without C x H x W floats (a 12000x12000 result needs only the two uint8 outputs plus small bands).

    Exact shortcut: where the four grid points around an output pixel share their argmax c, any convex
    combination of them has argmax c and maximum = the interpolated max map, so only pixels between grid
    points that disagree (a thin band along label boundaries) interpolate all classes.
    """
    kept = np.flatnonzero(q.reshape(q.shape[0], -1).max(axis=1) > 0)
    kept = kept if len(kept) else np.arange(q.shape[0])
    qk = np.asarray(q[kept], dtype=np.float32)
    low, peak = qk.argmax(axis=0).astype(np.uint8), qk.max(axis=0)  # uint8: bands stay small
    pad = np.pad(low, ((0, 1), (0, 1)), mode="edge")
    uniform = (pad[:-1, :-1] == pad[1:, :-1]) & (pad[:-1, :-1] == pad[:-1, 1:]) & (pad[:-1, :-1] == pad[1:, 1:])
    r0, r1, wy = _source_coords(height, q.shape[1])
    c0, c1, wx = _source_coords(width, q.shape[2])
    labels = np.empty((height, width), np.uint8)
    confidence = np.empty((height, width), np.uint8)
    rows = max(1, band_values // max(1, width))
    for top in range(0, height, rows):
        sl = slice(top, min(height, top + rows))
        a = wy[sl, None]
        vertical = peak[r0[sl]] * (1 - a) + peak[r1[sl]] * a  # (band, w)
        best = vertical[:, c0] * (1 - wx) + vertical[:, c1] * wx  # (band, width)
        band = low[r0[sl]][:, c0]
        ys, xs = np.nonzero(~uniform[r0[sl]][:, c0])
        if len(ys):
            y0, y1, ay = r0[sl][ys], r1[sl][ys], wy[sl][ys]
            x0, x1, ax = c0[xs], c1[xs], wx[xs]
            top_row = qk[:, y0, x0] * (1 - ax) + qk[:, y0, x1] * ax
            bottom_row = qk[:, y1, x0] * (1 - ax) + qk[:, y1, x1] * ax
            mixed = top_row * (1 - ay) + bottom_row * ay
            band[ys, xs] = mixed.argmax(axis=0)
            best[ys, xs] = mixed.max(axis=0)
        labels[sl] = kept[band]
        confidence[sl] = np.clip(np.rint(best * 255.0), 0, 255).astype(np.uint8)
    return labels, confidence


def upsampled_labels(q: np.ndarray, height: int, width: int, band_values: int = 1 << 20) -> np.ndarray:
    """argmax of (C, h, w) marginals bilinearly upsampled to height x width (memory bounded, exact)."""
    return upsampled_labels_and_confidence(q, height, width, band_values)[0]


def refine(
    image: np.ndarray,
    probabilities: np.ndarray,
    params: CRFParams = CRFParams(),
    handle: TaskHandle | None = None,
) -> np.ndarray:
    """CRF-refined HxW uint8 labels at the image's resolution (memory bounded: see `upsampled_labels`)."""
    q = refine_probabilities(image, probabilities, params, handle)
    return upsampled_labels(q, *image.shape[:2])
