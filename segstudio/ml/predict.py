"""The predictor: image in, labels + confidence out. Plain Python; the GUI worker and the CLI wrap it.

Pipeline (each stage timed in `PredictionResult.timings`):
  preprocess   resize so the long side is <= `max_side` (INTER_AREA), upload as uint8, normalise on device
  forward      whole image, or overlapping `tile_size` windows blended with ramp weights when larger
               (the blend is kept at a coarser stride when it would exceed `accumulator_budget_mb`, so
               memory stays bounded for any image size); optional flip TTA; autocast; softmax
  crf          optional dense CRF (`ml.crf`, default on a 1/3 grid in tiles; see its docstring), fed the probabilities
               at the working resolution, never C x H x W at the image's full resolution
  postprocess  bilinear upsampling to the image size in row bands (memory-bounded), argmax, confidence

Precision ("auto"): half precision (bfloat16 autocast, float16 on GPUs without bf16; + channels_last on
the CPU) is tried on the first image against float32 with the loaded model and kept only if its labels
agree on >= 99.5 % of pixels AND it is faster there. Why measured, not assumed: on this project's CPU
(AVX512-BF16) bf16 was 1.2-2.2x faster but random-init models agreed on only 41-99 %; on an H100 bf16
made ResNet-50 DeepLabs 1.6x faster but MobileNet ones 2x slower, and float16 overflowed to NaN on
ResNet-50. CPUs without native bf16 (emulated, slower) and MPS use float32. A non-finite half-precision
output is recomputed in float32, which then stays the precision (reported through the handle).
CUDA out of memory: the tile size is halved (down to `MIN_TILE`), then the model moves to the CPU;
each step is reported through `handle.set_status`.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from segstudio.core.errors import UsageError
from segstudio.core.logs import timed
from segstudio.core.task_handle import FallbackNote, NullTask, TaskHandle
from segstudio.ml.crf import (
    CRFParams,
    grid_image,
    refine_probabilities,
    upsampled_labels,
    upsampled_labels_and_confidence,
)
from segstudio.ml.precision import PRECISIONS, canonical_precision
from segstudio.ml.spec import ModelSpec
from segstudio.ml.tiling import iter_upsampled_bands, tile_grid, tile_weight
from segstudio.ml.weights import IMAGENET_NORMALIZATION, LoadedModel

__all__ = [
    "DEFAULT_MAX_SIDE",
    "MIN_TILE",
    "PRECISIONS",
    "PredictionResult",
    "Predictor",
    "load_predictor",
    "resolve_max_side",
    "resolve_precision",
    "store_prediction",
]

DEFAULT_MAX_SIDE = 1024
MIN_TILE = 256
HALF_MIN_AGREEMENT = 0.995
HALF_CHECK_SIDE = 320  # CPU: the check runs on the first image scaled to this long side (6 small passes)


HUGE_PIXELS = 16_000_000  # above this, freed forward buffers are returned to the OS before postprocessing


def _trim_heap() -> None:
    """Give freed forward-pass buffers back to the OS: glibc keeps them in its arenas, which on a
    12000x12000 image added ~150 MB to the peak (bench/memory.py). A no-op where there is no glibc."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


ImageSource = (
    np.ndarray | Callable[[], np.ndarray]
)  # an image, or a loader that hands over its only reference


_log = logging.getLogger(__name__)


def _fallback(handle: TaskHandle, message: str) -> None:
    """Work goes on in a degraded way: a WARNING in the log and a `FallbackNote` for the user."""
    _log.warning(message)
    handle.set_status(FallbackNote(message))


@dataclass(frozen=True)
class _ImageView:
    """The full-resolution image as postprocessing needs it: size, and the CRF-grid copy (None without CRF)."""

    height: int
    width: int
    crf_image: np.ndarray | None


@dataclass
class PredictionResult:
    labels: np.ndarray  # (H, W) uint8 class indices (after CRF when enabled)
    confidence: np.ndarray  # (H, W) uint8, round(255 * max probability) of the final distribution
    probabilities: np.ndarray | None  # (C, H, W) float32 when requested
    raw_labels: np.ndarray  # (H, W) uint8 labels before the CRF (same as labels without CRF)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    #: (C, h, w) float32 softmax before the CRF, long side <= core.probabilities.MAX_SIDE (when requested):
    #: what the project stores so the CRF can be re-run, toggled and tuned without the model
    coarse: np.ndarray | None = None


def _cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers moved: be conservative
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn "auto" into the precision used on `device` (see the module docstring for why)."""
    precision = canonical_precision(precision)  # fp32/bf16/fp16 are accepted too
    if precision != "auto":
        if precision == "float16" and device.type == "cpu":
            raise UsageError("float16 is for GPUs; on the CPU use bfloat16 or float32")
        return precision
    if device.type == "cuda":
        # bf16 has float32's range: float16 overflowed to inf/NaN on ResNet-50 DeepLabs in our H100 run
        return "check:bfloat16" if torch.cuda.is_bf16_supported() else "check:float16"
    if device.type == "cpu" and _cpu_has_native_bf16():
        return "check:bfloat16"
    return "float32"


def resolve_max_side(requested: int | None, loaded: LoadedModel | None = None) -> int | None:
    """The predictor's long-side cap for a user/spec choice: None = the cap the checkpoint was trained
    with (so inference sees the scale the model learned), else `DEFAULT_MAX_SIDE`; 0 = no cap."""
    if requested is None:
        requested = (
            loaded.max_side if loaded is not None and loaded.max_side is not None else DEFAULT_MAX_SIDE
        )
    return None if requested == 0 else requested


class Predictor:
    """Runs a segmentation model on RGB uint8 images; see the module docstring for the pipeline."""

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str = "cpu",
        *,
        normalization: dict[str, Sequence[float]] | None = None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        tile_size: int = 1024,
        tile_overlap: int = 128,
        batch_size: int | None = None,
        tta: bool = False,
        precision: str = "auto",
        channels_last: bool | None = None,
        crf: CRFParams | None = None,
        return_probabilities: bool = False,
        coarse_probabilities: bool = False,
        sync_timings: bool = False,
        accumulator_budget_mb: float = 256,
    ) -> None:
        if tile_size < 32 or tile_overlap < 0 or tile_overlap >= tile_size:
            raise UsageError(f"bad tiling: tile_size {tile_size} must be >= 32 and > overlap {tile_overlap}")
        if max_side is not None and max_side < 32:
            raise UsageError(
                f"max_side {max_side} is too small; use at least 32 (or None for full resolution)"
            )
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self._half_candidate = (
            self.precision.removeprefix("check:") if self.precision.startswith("check:") else None
        )
        if self._half_candidate:
            self.precision = "float32"
        #: what the "auto" check measured: {"candidate", "agreement", "speedup"} (None until it ran)
        self.half_check: dict[str, float | str] | None = None
        self.notes: list[str] = []  # precision fallbacks not yet reported through a handle
        self._channels_last_option = channels_last
        self.channels_last = (self.precision == "bfloat16") if channels_last is None else channels_last
        self.model = model.eval().to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        norm = normalization or IMAGENET_NORMALIZATION
        self._mean = torch.tensor(norm["mean"], dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(norm["std"], dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.max_side = max_side
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        # tiles per forward: batching helps a GPU; on the CPU it only multiplies the activation memory
        self.batch_size = (
            max(1, batch_size) if batch_size is not None else (4 if self.device.type == "cuda" else 1)
        )
        self.tta = tta
        self.crf = crf if crf is not None and crf.enabled else None
        self.return_probabilities = return_probabilities
        self.coarse_probabilities = coarse_probabilities
        self.sync_timings = sync_timings
        self.accumulator_budget_mb = accumulator_budget_mb

    @property
    def precision_label(self) -> str:
        """For logs: the precision in use, or that it is still to be decided on the first image."""
        if self._half_candidate:
            return f"auto ({self._half_candidate} if it agrees with float32 and is faster on the first image)"
        return self.precision

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, *, max_side: int | None = None, **options: object) -> Predictor:
        """A predictor for a loaded model; `max_side` as in `resolve_max_side` (None = the checkpoint's
        training cap, else the default; 0 = full resolution)."""
        return cls(
            loaded.model,
            loaded.device,
            normalization=loaded.normalization,  # type: ignore[arg-type]
            max_side=resolve_max_side(max_side, loaded),
            **options,
        )

    # ------------------------------------------------------------------ stages

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        if self.max_side is None or max(height, width) <= self.max_side:
            return height, width
        scale = self.max_side / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    def _sync(self) -> None:
        if self.sync_timings and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """(1, 3, h, w) normalised float32 tensor on the device at the working size."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UsageError(
                f"expected an HxWx3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
            )
        h, w = self.working_size(*image.shape[:2])
        if (h, w) != image.shape[:2]:
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        image = (
            np.ascontiguousarray(image) if image.flags.writeable else np.array(image)
        )  # torch wants writable
        x = torch.from_numpy(image).to(self.device, non_blocking=True)
        x = x.permute(2, 0, 1).unsqueeze(0).float()
        return (x - self._mean.to(self.device)) / self._std.to(self.device)

    def _autocast(self):
        if self.precision == "float32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities (N, C, h, w) float32 for a normalised batch, with optional flip TTA."""
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            logits = self.model(batch)["out"]
            probs = logits.float().softmax(dim=1).contiguous()
            if self.tta:
                flipped = self.model(batch.flip(-1))["out"].float().softmax(dim=1).flip(-1).contiguous()
                probs = (probs + flipped) * 0.5
        if self.precision != "float32" and not bool(torch.isfinite(probs).all()):
            note = FallbackNote(f"{self.precision} overflowed (non-finite outputs): switched to float32")
            _log.warning(note)
            self.notes.append(note)
            self.precision = "float32"
            return self._forward_batch(batch)
        return probs

    def _accumulator_stride(self, num_classes: int, height: int, width: int) -> int:
        """1, or the stride at which blended probabilities are kept so they fit `accumulator_budget_mb`.

        DeepLab-style logits are produced at output stride 8-16 and only bilinearly upsampled, so
        keeping their blend at a stride of a few pixels loses next to nothing, and a 4000x3000 image
        at full resolution no longer needs C x 12 M floats."""
        need = num_classes * height * width * 4
        budget = self.accumulator_budget_mb * (1 << 20)
        return 1 if need <= budget else math.ceil(math.sqrt(need / budget))

    def _forward_tiled(self, x: torch.Tensor, handle: TaskHandle, tile_size: int) -> torch.Tensor:
        _, _, h, w = x.shape
        tiles = tile_grid(h, w, tile_size, self.tile_overlap)
        if len(tiles) == 1:
            handle.check_cancelled()
            probs = self._forward_batch(x)[0]
            handle.set_progress(1, 1)
            return probs
        acc: torch.Tensor | None = None
        weight_sum: torch.Tensor | None = None
        stride = 1
        done = 0
        for start in range(0, len(tiles), self.batch_size):
            handle.check_cancelled()
            group = tiles[start : start + self.batch_size]
            batch = torch.cat([x[:, :, t.slices[0], t.slices[1]] for t in group])
            probs = self._forward_batch(batch)
            if acc is None:
                stride = self._accumulator_stride(probs.shape[1], h, w)
                acc = torch.zeros((probs.shape[1], -(-h // stride), -(-w // stride)), device=self.device)
                weight_sum = torch.zeros(acc.shape[1:], device=self.device)
            assert weight_sum is not None
            for tile, p in zip(group, probs):
                weight = tile_weight(tile, h, w, self.tile_overlap).to(self.device)
                if stride == 1:
                    acc[:, tile.slices[0], tile.slices[1]] += p * weight
                    weight_sum[tile.slices] += weight
                    continue
                # Sum-pool onto the coarse grid: zero-pad the tile to whole cells, so every coarse
                # cell gets sum(w * p) and sum(w) of exactly the pixels it covers.
                top, left = tile.top % stride, tile.left % stride
                pad = (left, -(-(left + tile.width) // stride) * stride - left - tile.width,
                       top, -(-(top + tile.height) // stride) * stride - top - tile.height)  # fmt: skip
                pooled_p = F.avg_pool2d(F.pad((p * weight)[None], pad), stride)[0]
                pooled_w = F.avg_pool2d(F.pad(weight[None, None], pad), stride)[0, 0]
                r0, c0 = tile.top // stride, tile.left // stride
                acc[:, r0 : r0 + pooled_p.shape[1], c0 : c0 + pooled_p.shape[2]] += pooled_p
                weight_sum[r0 : r0 + pooled_w.shape[0], c0 : c0 + pooled_w.shape[1]] += pooled_w
            done += len(group)
            handle.set_progress(done, len(tiles))
        assert acc is not None and weight_sum is not None
        return acc / weight_sum

    def forward(self, x: torch.Tensor, handle: TaskHandle | None = None) -> torch.Tensor:
        """(C, h, w) probabilities; on CUDA out-of-memory retry with smaller tiles, then on the CPU."""
        handle = handle or NullTask()
        tile_size = self.tile_size
        while True:
            try:
                probs = self._forward_tiled(x, handle, tile_size)
                while self.notes:
                    handle.set_status(self.notes.pop(0))
                return probs
            except torch.OutOfMemoryError:
                if self.device.type != "cuda":
                    raise
                torch.cuda.empty_cache()
                if tile_size > MIN_TILE:
                    tile_size = max(MIN_TILE, tile_size // 2)
                    self.tile_size = tile_size
                    _fallback(handle, f"GPU out of memory: retrying with {tile_size} px tiles")
                    continue
                _fallback(handle, "GPU out of memory even with small tiles: continuing on the CPU (slower)")
                self._move_to_cpu()
                x = x.cpu()

    def _move_to_cpu(self) -> None:
        self.device = torch.device("cpu")
        self.precision, self.channels_last = "float32", False
        candidate = resolve_precision("auto", self.device)
        self._half_candidate = candidate.removeprefix("check:") if candidate.startswith("check:") else None
        self.model = self.model.to(self.device)
        self.tile_size = max(self.tile_size, MIN_TILE)

    def finalize(self, probs: torch.Tensor, height: int, width: int, keep: bool = False):
        """Labels (uint8), confidence (uint8) and optionally full probabilities at (height, width)."""
        if (
            not keep and probs.device.type == "cpu"
        ):  # exact shortcut, no C x H x W work (12000x12000: seconds)
            return (*upsampled_labels_and_confidence(probs.float().contiguous().numpy(), height, width), None)
        labels = np.empty((height, width), dtype=np.uint8)
        confidence = np.empty((height, width), dtype=np.uint8)
        full = np.empty((probs.shape[0], height, width), dtype=np.float32) if keep else None
        # bands of ~16 M values on a GPU (few host syncs), ~2 M on the CPU (~5 temporaries of 8 MB each: the
        # peak-memory bound of README "Dense CRF" counts on it for 12000x12000 images)
        budget = (16 << 20) if probs.device.type == "cuda" else (2 << 20)
        band_rows = max(16, budget // max(1, probs.shape[0] * width))
        for top, band in iter_upsampled_bands(probs, height, width, band_rows):
            best, index = band.max(dim=0)
            rows = slice(top, top + band.shape[1])
            labels[rows] = index.to(torch.uint8).cpu().numpy()
            confidence[rows] = (best * 255.0).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
            if full is not None:
                full[:, rows] = band.cpu().numpy()
        return labels, confidence, full

    # ------------------------------------------------------------------ public

    def _timed_labels(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Labels and the best of a few timed passes (after a warm-up: oneDNN / cuDNN pick kernels on the first)."""
        labels = self._forward_batch(x).argmax(1)
        best = float("inf")
        for _ in range(3 if self.device.type == "cuda" else 2):
            self._sync_device()
            t0 = time.perf_counter()
            self._forward_batch(x)
            self._sync_device()
            best = min(best, time.perf_counter() - t0)
        return labels, best

    def _sync_device(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _check_half(self, image: np.ndarray, handle: TaskHandle) -> None:
        """Keep half precision only if it agrees with float32 on >= 99.5 % of pixels and is faster."""
        candidate, self._half_candidate = self._half_candidate, None
        assert candidate is not None
        h, w = image.shape[:2]
        side = HALF_CHECK_SIDE if self.device.type == "cpu" else self.tile_size
        scale = min(1.0, side / max(h, w))
        small = cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        x = self.preprocess(small)
        reference, t_full = self._timed_labels(x)
        cl_option = self._channels_last_option
        self.precision = candidate
        self.channels_last = (self.device.type == "cpu") if cl_option is None else cl_option
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        labels, t_half = self._timed_labels(x)
        agreement = float((labels == reference).float().mean())
        speedup = t_full / max(t_half, 1e-9)
        self.half_check = {"candidate": candidate, "agreement": agreement, "speedup": speedup}
        if self.precision == candidate and agreement >= HALF_MIN_AGREEMENT and speedup > 1.0:
            handle.set_status(
                f"{candidate}: {agreement:.2%} agreement with float32, {speedup:.1f}x faster: using {candidate}"
            )
            return
        self.precision, self.channels_last = "float32", bool(cl_option)
        if not self.channels_last:
            self.model = self.model.to(memory_format=torch.contiguous_format)
        handle.set_status(
            f"{candidate}: {agreement:.2%} agreement with float32, {speedup:.1f}x speed: using float32"
        )

    @timed("predict one image")
    def predict(self, image: ImageSource, handle: TaskHandle | None = None) -> PredictionResult:
        """Predict one HxWx3 uint8 RGB image; `handle` gets tile progress and can cancel.

        `image` may be a zero-argument loader (e.g. ``lambda: project.load_image(rec)``): the full-resolution
        picture then lives only until its working-size and CRF-grid copies are made, so it never coexists
        with the full-resolution labels (a 12000x12000 photo: 412 MiB less at the peak, bench/memory.py)."""
        handle = handle or NullTask()
        if callable(image):
            image = image()
            handle.check_cancelled()  # decoding a huge image takes a while
        if self._half_candidate:
            self._check_half(image, handle)
        t0 = time.perf_counter()
        x, view = self.preprocess(image), self._view(image)
        del image  # the caller's loader handed over the only reference
        self._sync()
        return self._predict_tensor(view, x, handle, time.perf_counter() - t0)

    def _view(self, image: np.ndarray) -> _ImageView:
        """What postprocessing needs of the full image: its size and, with the CRF, the CRF-grid copy."""
        return _ImageView(
            image.shape[0], image.shape[1], None if self.crf is None else grid_image(image, self.crf)
        )

    def _predict_tensor(
        self, view: _ImageView, x: torch.Tensor, handle: TaskHandle, t_pre: float
    ) -> PredictionResult:
        t1 = time.perf_counter()
        probs = self.forward(x, handle)
        self._sync()
        if view.height * view.width > HUGE_PIXELS:
            _trim_heap()
        timings = {"preprocess": t_pre, "forward": time.perf_counter() - t1}
        return self._postprocess(view, probs, handle, timings)

    @staticmethod
    def coarse(probs: torch.Tensor) -> np.ndarray:
        """(C, h, w) float32 on the CPU, area-reduced so the long side is <= MAX_SIDE (small: stored per image)."""
        from segstudio.core.probabilities import MAX_SIDE

        _, h, w = probs.shape
        if max(h, w) > MAX_SIDE:
            size = (max(1, round(h * MAX_SIDE / max(h, w))), max(1, round(w * MAX_SIDE / max(h, w))))
            probs = F.interpolate(probs[None].float(), size=size, mode="area")[0]
        return probs.float().cpu().numpy()

    def _postprocess(
        self, view: _ImageView, probs: torch.Tensor, handle: TaskHandle, timings: dict[str, float]
    ) -> PredictionResult:
        height, width = view.height, view.width
        coarse = self.coarse(probs) if self.coarse_probabilities else None
        t2 = time.perf_counter()
        if self.crf is None:
            raw_labels, confidence, full = self.finalize(probs, height, width, self.return_probabilities)
        elif probs.device.type == "cpu":  # labels only: the confidence before the CRF is not kept
            raw_labels, full = upsampled_labels(probs.float().contiguous().numpy(), height, width), None
        else:
            raw_labels, full = self.finalize(probs, height, width)[0], None
        t3 = time.perf_counter()
        labels = raw_labels
        if self.crf is not None:
            handle.check_cancelled()
            q = refine_probabilities(view.crf_image, probs.cpu().numpy(), self.crf, handle, (height, width))
            if height * width > HUGE_PIXELS:
                _trim_heap()  # the CRF's lattice buffers, before the full-resolution labels are allocated
            t4 = time.perf_counter()
            labels, confidence, full = self.finalize(
                torch.from_numpy(q), height, width, self.return_probabilities
            )
            t5 = time.perf_counter()
            timings["crf"] = t4 - t3
            timings["postprocess"] = (t3 - t2) + (t5 - t4)
        else:
            timings["postprocess"] = t3 - t2
        return PredictionResult(labels, confidence, full, raw_labels, timings, coarse)

    def predict_many(
        self, images: Iterable[ImageSource], handle: TaskHandle | None = None
    ) -> Iterator[PredictionResult]:
        """Predict images in order, batching consecutive same-size single-tile images (`batch_size`) into
        one forward pass; anything else (tiled images, a batch that runs out of GPU memory) goes one by one."""
        handle = handle or NullTask()
        pending: list[tuple[_ImageView, torch.Tensor]] = []

        def flush() -> Iterator[PredictionResult]:
            items = list(pending)
            pending.clear()
            if not items:
                return
            handle.check_cancelled()
            t0 = time.perf_counter()
            try:
                probs = self._forward_batch(torch.cat([x for _, x in items]))
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                for view, x in items:
                    yield self._predict_tensor(view, x, handle, 0.0)
                return
            self._sync()
            per_image = (time.perf_counter() - t0) / len(items)
            for (view, _), p in zip(items, probs):
                yield self._postprocess(view, p, handle, {"preprocess": 0.0, "forward": per_image})

        for image in images:
            image = image() if callable(image) else image
            if self._half_candidate:
                self._check_half(image, handle)
            t0 = time.perf_counter()
            x, view = self.preprocess(image), self._view(image)
            del image  # pending batches keep only the small copies
            single = len(tile_grid(x.shape[2], x.shape[3], self.tile_size, self.tile_overlap)) == 1
            if pending and (not single or pending[0][1].shape != x.shape):
                yield from flush()
            if single and self.batch_size > 1:
                pending.append((view, x))
                if len(pending) >= self.batch_size:
                    yield from flush()
            else:
                yield self._predict_tensor(view, x, handle, time.perf_counter() - t0)
        yield from flush()


def store_prediction(
    project: Any, record: Any, result: PredictionResult, version: str, crf_ran: bool
) -> None:
    """Keep one prediction in the project: its reduced class probabilities (for switching or tuning the CRF
    later without predicting again) and labels + confidence, with the labels before the CRF when it ran.
    The one place both the CLI (`segstudio predict`) and the GUI's inference worker store a prediction."""
    from segstudio.core.probabilities import save_probabilities

    save_probabilities(project, record.id, result.coarse, result.labels.shape)
    project.save_prediction(
        record, result.labels, result.confidence, version, result.raw_labels if crf_ran else None
    )


def load_predictor(
    spec: ModelSpec,
    scheme: Any,
    project: Any = None,
    remap_classes: bool = False,
    handle: TaskHandle | None = None,
    **options: object,
) -> tuple[LoadedModel, Predictor]:
    """The one path from a `ModelSpec` to a ready predictor, shared by `segstudio predict` and the GUI's
    inference worker: device, weights, then precision/TTA/CRF/size cap from the spec; `options` are the
    remaining `Predictor` settings (tile size, batch size...)."""
    from segstudio.ml.device import pick_device
    from segstudio.ml.weights import load_model

    loaded = load_model(spec, scheme, pick_device(spec.device), remap_classes, project, handle)
    predictor = Predictor.from_loaded(
        loaded, max_side=spec.max_side, precision=spec.precision, tta=spec.tta, crf=spec.crf, **options
    )
    return loaded, predictor
