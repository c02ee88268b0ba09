"""Fully connected CRF refinement (Krähenbühl & Koltun 2011, as used by DeepLab) through pydensecrf.

Unary = -log(softmax probabilities); pairwise = a Gaussian smoothness kernel (sxy 3, compat 3) plus
a bilateral appearance kernel (sxy 20, srgb 3, compat 5: see `CRFParams`), 5 mean-field iterations.

Fast by default. The CRF runs on the image downscaled by `scale` (default 3; INTER_AREA) with the spatial
kernel widths divided by the same factor, so they cover the same part of the scene; small images keep at
least `min_pixels` (24 576) on the grid, so a 500x375 photo runs at ~1/2.8 and not 1/3; huge ones at most
`max_pixels` (262 144 = 512x512; the 2048x1024 grid is 683x341). Why this is enough: the unary comes from
a network at output stride 8-16, so the CRF only moves boundaries by a few pixels, and the refined
marginals are smooth between colour edges; they are upsampled bilinearly (`upsampled_labels`).
The grid is refined in tiles of ~`TILE` (192) grid pixels a side, each with a margin of two kernel widths
of context, and each tile's CRF keeps only the classes that reach `PRUNE_BELOW` (5 %) somewhere in the tile
or its margin. Why: mean-field cost is proportional to the classes (19 -> ~6 per tile on street scenes),
small lattices stay in the CPU cache (tiling alone was ~30 % faster), and pydensecrf's memory is per tile.
Why pruning keeps the result: the CRF's messages are kernel-weighted averages of the neighbours'
marginals, so a class under 5 % everywhere in reach gains at most ~0.4 of log-odds (compat 8 x 5 %) and
cannot overtake one that leads there. Measured by `bench/crf.py` against full-resolution pydensecrf with
every class, same run (README "Dense CRF"). Also measured and not kept: the 1/4 grid (9x but 99.41 %
agreement on the worst frame), a sharper downscale (INTER_LINEAR / NEAREST: lower agreement), and a
full-resolution refinement of the band around the coarse boundaries (point set within 12-16 px of them:
as slow as the coarse pass, and no more exact: the 60 px bilateral reach needs context beyond the band).
Memory stays bounded for any image: the CRF grid is capped, tiles bound pydensecrf's buffers, and
`refine` upsamples + argmaxes in row bands instead of building C x H x W floats at full resolution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import SegStudioError
from segstudio.core.task_handle import TaskHandle

__all__ = [
    "PRUNE_BELOW",
    "SETTING_KEY",
    "CRFError",
    "CRFParams",
    "crf_grid",
    "grid_image",
    "load_params",
    "refine",
    "refine_probabilities",
    "resize_chw",
    "save_params",
    "upsampled_labels",
    "upsampled_labels_and_confidence",
]

SETTING_KEY = "crf"
PRUNE_BELOW = 0.05  # a class below this probability everywhere in a tile is left out of that tile's CRF
TILE = 192  # grid pixels per tile side (before margins): small lattices stay in cache
TILE_MARGIN_SIGMAS = 2.0  # context around a tile, in kernel widths


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
    scale: float = 3.0  # run at 1/scale resolution (1 = full); lowered for small images, see min_pixels
    max_pixels: int = 262_144  # above this (after `scale`) the scale is raised to fit (speed + memory)
    enabled: bool = True
    min_pixels: int = 24_576  # `scale` is lowered (not below 1) so the grid keeps at least this many pixels

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.iterations, int) and 1 <= self.iterations <= 50, "iterations must be 1-50"),
            (self.gaussian_sxy > 0 and self.bilateral_sxy > 0, "kernel widths (sxy) must be > 0"),
            (self.bilateral_srgb > 0, "bilateral_srgb must be > 0"),
            (self.gaussian_compat >= 0 and self.bilateral_compat >= 0, "compat weights must be >= 0"),
            (1.0 <= self.scale <= 16.0, "scale must be between 1 (full resolution) and 16"),
            (
                isinstance(self.max_pixels, int) and self.max_pixels >= 1024,
                "max_pixels must be an integer >= 1024",
            ),
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
                k: (
                    int(v)
                    if k in ("iterations", "max_pixels", "min_pixels")
                    else bool(v)
                    if k == "enabled"
                    else float(v)
                )
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


def resize_chw(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, height, width) float32: each class map bilinearly resized (cv2, in channel groups)."""
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
    """Indices of the classes that reach `PRUNE_BELOW` somewhere in `probs` (C, h, w); when none does
    (a near-uniform map), the two with the highest peaks."""
    peak = probs.reshape(probs.shape[0], -1).max(axis=1)
    kept = np.flatnonzero(peak >= PRUNE_BELOW)
    return kept if len(kept) else np.sort(np.argsort(peak)[-2:])


def crf_grid(params: CRFParams, height: int, width: int) -> tuple[float, int, int]:
    """(scale, h, w): the grid the CRF runs on for an image of height x width."""
    scale = params.effective_scale(height, width)
    return scale, max(1, round(height / scale)), max(1, round(width / scale))


def grid_image(image: np.ndarray, params: CRFParams) -> np.ndarray:
    """The image at its CRF grid size (INTER_AREA), C-contiguous: what `refine_probabilities` needs of it,
    so a caller can drop a huge full-resolution picture before the CRF (pass `image_size` then)."""
    _, h, w = crf_grid(params, *image.shape[:2])
    small = image if (h, w) == image.shape[:2] else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return small if small.flags.c_contiguous else np.ascontiguousarray(small)


def refine_probabilities(
    image: np.ndarray,
    probabilities: np.ndarray,
    params: CRFParams = CRFParams(),
    handle: TaskHandle | None = None,
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Refined (C, h, w) float32 marginals on the CRF grid (`crf_grid`: the image divided by the effective scale).

    `image` is HxWx3 uint8 RGB; `probabilities` (C, H', W') may have any size (e.g. the network's
    working resolution) and are resized to the CRF grid. With `image_size` (height, width), `image` is
    that image's `grid_image` (a full-size one is resized as usual). The grid is refined in tiles (`_tiles`) with
    per-tile class pruning; pruned classes get 0. Cancels between mean-field iterations.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CRFError(f"CRF needs an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    if probabilities.ndim != 3 or probabilities.shape[0] < 1:
        raise CRFError(f"CRF needs (classes, height, width) probabilities, got shape {probabilities.shape}")
    height, width = image_size or image.shape[:2]
    scale, h, w = crf_grid(params, height, width)
    small = image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    small = small if small.flags.c_contiguous else np.ascontiguousarray(small)
    # resize first, then drop classes: no full-size copy of the network's map (peak memory on huge images)
    probs = resize_chw(np.asarray(probabilities, dtype=np.float32), h, w)
    q = np.zeros_like(probs)
    margin = math.ceil(TILE_MARGIN_SIGMAS * max(params.bilateral_sxy, params.gaussian_sxy) / scale)
    for inner, outer in _tiles(h, w, margin):
        _refine_tile(small, probs, q, inner, outer, params, scale, handle)
    return q


def _tiles(h: int, w: int, margin: int) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """(inner, outer) slices: tiles of about `TILE` grid pixels a side covering the grid once (inner),
    each grown by `margin` (outer: the context its kernels see, 2 bilateral widths)."""
    ny, nx = max(1, round(h / TILE)), max(1, round(w / TILE))
    out = []
    for i in range(ny):
        y0, y1 = h * i // ny, h * (i + 1) // ny
        for j in range(nx):
            x0, x1 = w * j // nx, w * (j + 1) // nx
            outer = (
                slice(max(0, y0 - margin), min(h, y1 + margin)),
                slice(max(0, x0 - margin), min(w, x1 + margin)),
            )
            out.append(((slice(y0, y1), slice(x0, x1)), outer))
    return out


def _refine_tile(
    small: np.ndarray,
    probs: np.ndarray,
    q: np.ndarray,
    inner: tuple[slice, slice],
    outer: tuple[slice, slice],
    params: CRFParams,
    scale: float,
    handle: TaskHandle | None,
) -> None:
    """Mean field on one tile (with its margin) over the classes that reach `PRUNE_BELOW` there; writes
    the inner part of q. A tile with one such class is that class (no CRF: nothing can compete)."""
    import pydensecrf.densecrf as dcrf

    sub = probs[:, outer[0], outer[1]]
    th, tw = sub.shape[1:]
    kept = _kept_classes(sub)
    iy = slice(inner[0].start - outer[0].start, inner[0].stop - outer[0].start)
    ix = slice(inner[1].start - outer[1].start, inner[1].stop - outer[1].start)
    if len(kept) == 1:
        q[kept[0], inner[0], inner[1]] = 1.0
        return
    unary = -np.log(np.clip(sub[kept].reshape(len(kept), -1), 1e-5, 1.0))
    crf = dcrf.DenseCRF2D(tw, th, len(kept))
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy / scale, compat=params.gaussian_compat)
    rgb = small[outer[0], outer[1]]
    if not (rgb.flags.c_contiguous and rgb.flags.writeable):  # pydensecrf's memoryview needs both
        rgb = np.array(rgb, order="C")
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy / scale,
        srgb=params.bilateral_srgb,
        rgbim=rgb,
        compat=params.bilateral_compat,
    )
    state = crf.startInference()
    for _ in range(params.iterations):
        if handle is not None:
            handle.check_cancelled()
        crf.stepInference(*state)
    q[kept, inner[0], inner[1]] = np.asarray(state[0], dtype=np.float32).reshape(len(kept), th, tw)[:, iy, ix]


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
    uniform = (
        (pad[:-1, :-1] == pad[1:, :-1]) & (pad[:-1, :-1] == pad[:-1, 1:]) & (pad[:-1, :-1] == pad[1:, 1:])
    )
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
