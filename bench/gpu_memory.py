"""Peak GPU memory of prediction at the pixel cap, and the out-of-memory fallbacks forced to trigger.

    python -m bench.gpu_memory peak --device cuda                 # a 150 MP photo (core.images' cap)
    python -m bench.gpu_memory oom --device cuda
    python -m bench.gpu_memory peak --device cpu --pixels 200000  # the dry run's tiny version

`peak`: a CamVid frame (synthetic without the test data) resized to `--pixels` (default
`DEFAULT_MAX_PIXELS`, the largest image the app opens) and handed to `Predictor` as a loader, as the GUI
worker does; no CRF (it runs on the CPU). Twice: at the default size cap (`max_side` 1024: the photo is
downscaled first) and at full resolution (`max_side` None: 1024 px tiles, the blend accumulator
bounded). Reports `torch.cuda.max_memory_allocated` (CUDA) and the process's peak RSS.

`oom`: the fallbacks that `ml.predict` promises, each forced and checked to recover (labels of the
right shape, the status messages it gave, and how many were `FallbackNote`s, which the GUI lists
under Problems):
  * `batch_to_single`: a model that raises `torch.OutOfMemoryError` on any batch of more than one image
    -> `predict_many` predicts the batch one by one (any device);
  * `halve_tile` (CUDA): raises on inputs larger than 512 px -> the tile size halves from 1024 to 512;
  * `to_cpu` (CUDA): raises on every CUDA input -> tiles halve down to `MIN_TILE`, then the CPU finishes;
  * `real_halve_tile` (CUDA): no injection: `torch.cuda.set_per_process_memory_fraction` leaves room for
    less than a 1024 px tile's forward (measured first in the same run), so the allocator really fails;
  * `train_step`: the trainer's first loss raises `torch.OutOfMemoryError`; records whether the run
    recovers (the trainer has no batch-halving fallback today, so this documents what a user gets).
Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.gpu_predict import camvid_frames, find_testdata

ARCH = "deeplabv3_mobilenet_v3_large"
CLASSES = 21


class StatusLog:
    """A task handle that keeps the status messages (the fallbacks report through it)."""

    def __init__(self) -> None:
        from segstudio.core.task_handle import NullTask

        self._inner = NullTask()
        self.messages: list[str] = []

    def set_status(self, message: str) -> None:
        self.messages.append(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class OomWhen(nn.Module):
    """Delegates to `inner`, but raises `torch.OutOfMemoryError` when `rule(x)` says so (counted)."""

    def __init__(self, inner: nn.Module, rule) -> None:
        super().__init__()
        self.inner, self.rule, self.raised = inner, rule, 0

    def forward(self, x: torch.Tensor):
        if self.rule(x):
            self.raised += 1
            raise torch.OutOfMemoryError("forced by bench.gpu_memory")
        return self.inner(x)


def _photo(testdata: str | None) -> tuple[np.ndarray, str]:
    from PIL import Image

    frames = camvid_frames(find_testdata(testdata))
    if frames:
        base, source = np.asarray(Image.open(frames[0]).convert("RGB")), f"camvid {frames[0].name}"
    else:
        from skimage import data as skdata

        base, source = skdata.astronaut(), "synthetic (astronaut)"
    return base, source


def _model(device: torch.device) -> nn.Module:
    from segstudio.ml.models import build_model

    torch.manual_seed(0)
    return build_model(ARCH, CLASSES, aux_loss=False).eval()


def _cuda_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _cuda_peak_mb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def peak(device: torch.device, pixels: int, testdata: str | None) -> None:
    import cv2

    from segstudio.ml.predict import DEFAULT_MAX_SIDE, Predictor

    base, source = _photo(testdata)
    h, w = base.shape[:2]
    scale = (pixels / (h * w)) ** 0.5
    size = (max(32, round(w * scale)), max(32, round(h * scale)))  # (width, height)
    model = _model(device)
    for label, max_side in (("default_cap", DEFAULT_MAX_SIDE), ("full_resolution", None)):
        predictor = Predictor(model, device, max_side=max_side, coarse_probabilities=True)
        _cuda_reset(device)
        t0 = time.perf_counter()
        result = predictor.predict(lambda: cv2.resize(base, size, interpolation=cv2.INTER_LINEAR))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        record = {
            "bench": "gpu_memory_peak",
            "case": label,
            "device": str(device),
            "photo": source,
            "size": f"{size[0]}x{size[1]}",
            "megapixels": round(size[0] * size[1] / 1e6, 1),
            "max_side": max_side,
            "tile_size": predictor.tile_size,
            "precision": predictor.precision_label,
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_gpu_mb": _cuda_peak_mb(device),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "labels_shape": list(result.labels.shape),
        }
        del result
        print(json.dumps(record), flush=True)
        model = predictor.model


def _oom_case(name: str, device: torch.device, fn) -> None:
    record: dict[str, Any] = {"bench": "gpu_memory_oom", "case": name, "device": str(device)}
    t0 = time.perf_counter()
    try:
        record.update(fn())
    except Exception as error:  # one case failing must not hide the others
        record.update(recovered=False, error=f"{type(error).__name__}: {str(error)[:500]}")
    record["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(record), flush=True)


def _image(side: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (side, side, 3), dtype=np.uint8)


def oom(device: torch.device, side: int) -> None:
    from segstudio.core.task_handle import FallbackNote
    from segstudio.ml.predict import MIN_TILE, Predictor

    def batch_to_single() -> dict[str, Any]:
        wrapped = OomWhen(_model(device), lambda x: x.shape[0] > 1)
        predictor = Predictor(wrapped, device, precision="float32", batch_size=4, max_side=None)
        images = [_image(min(side, 256)) for _ in range(4)]
        results = list(predictor.predict_many(images, StatusLog()))
        ok = len(results) == 4 and all(r.labels.shape == images[0].shape[:2] for r in results)
        return {"recovered": ok, "forced_ooms": wrapped.raised, "images": len(results)}

    def halve_tile(limit: int, side: int, always: bool = False):
        def case() -> dict[str, Any]:
            if device.type != "cuda":
                raise RuntimeError("needs CUDA: ml.predict only falls back on CUDA out-of-memory")
            wrapped = OomWhen(
                _model(device),
                lambda x: x.is_cuda and (always or max(x.shape[-2:]) > limit),
            )
            predictor = Predictor(wrapped, device, precision="float32", tile_size=1024, max_side=None)
            log = StatusLog()
            result = predictor.predict(_image(side), log)
            return {
                "recovered": result.labels.shape == (side, side),
                "forced_ooms": wrapped.raised,
                "final_tile_size": predictor.tile_size,
                "final_device": str(predictor.device),
                "min_tile": MIN_TILE,
                "statuses": log.messages[:8],
                "fallback_notes": sum(isinstance(m, FallbackNote) for m in log.messages),
            }

        return case

    def real_halve_tile() -> dict[str, Any]:
        if device.type != "cuda":
            raise RuntimeError("needs CUDA (torch.cuda.set_per_process_memory_fraction)")
        model = _model(device)
        probe = Predictor(model, device, precision="float32", tile_size=1024, max_side=None)
        _cuda_reset(device)
        base = torch.cuda.memory_allocated(device)
        probe.predict(_image(1024))
        need = torch.cuda.max_memory_allocated(device) - base  # one 1024 px tile's forward
        total = torch.cuda.get_device_properties(device).total_memory
        allowed = base + need // 2
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(allowed / total, device)
        try:
            predictor = Predictor(probe.model, device, precision="float32", tile_size=1024, max_side=None)
            log = StatusLog()
            result = predictor.predict(_image(side), log)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)
        return {
            "recovered": result.labels.shape == (side, side),
            "tile_forward_mb": round(need / 2**20, 1),
            "allowed_mb": round(allowed / 2**20, 1),
            "final_tile_size": predictor.tile_size,
            "final_device": str(predictor.device),
            "statuses": log.messages[:8],
            "fallback_notes": sum(isinstance(m, FallbackNote) for m in log.messages),
        }

    def train_step() -> dict[str, Any]:
        import segstudio.ml.train_loop as train_loop
        from segstudio.ml.manifest import BaseSpec
        from segstudio.ml.progress import ProgressWriter
        from segstudio.ml.synthetic import write_shapes_manifest
        from segstudio.ml.train import TrainConfig, train

        real_loss, calls = train_loop.loss_fn, {"n": 0}

        def loss_once_oom(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise torch.OutOfMemoryError("forced by bench.gpu_memory (first training step)")
            return real_loss(*args, **kwargs)

        with tempfile.TemporaryDirectory() as tmp:
            manifest = write_shapes_manifest(tmp, train=4, val=0, size=64, arch="lraspp_mobilenet_v3_large",
                                             base=BaseSpec("scratch"))  # fmt: skip
            config = TrainConfig(epochs=1, batch=2, crop=48, workers=0, min_iters_per_epoch=2,
                                 device=str(device), patience=0, baseline_eval=False)  # fmt: skip
            train_loop.loss_fn = loss_once_oom
            try:
                result = train(manifest, config, progress=ProgressWriter(enabled=False))
            finally:
                train_loop.loss_fn = real_loss
            saved = sorted(p.name for p in Path(manifest.output_dir).iterdir())
        return {
            "recovered": True,
            "steps_after_oom": calls["n"] - 1,
            "files": saved,
            "result": str(result)[:200],
        }

    _oom_case("batch_to_single", device, batch_to_single)
    _oom_case("halve_tile", device, halve_tile(512, side))
    _oom_case("to_cpu", device, halve_tile(0, min(side, 1024), always=True))
    _oom_case("real_halve_tile", device, real_halve_tile)
    _oom_case("train_step", device, train_step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("peak", "oom"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--pixels", type=int, help="photo size for `peak` (default: the app's pixel cap)")
    parser.add_argument("--side", type=int, default=2048, help="square image side for `oom`")
    parser.add_argument("--testdata")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from segstudio.core.images import DEFAULT_MAX_PIXELS
    from segstudio.ml.device import pick_device

    device = pick_device(args.device)
    if args.what == "peak":
        peak(device, args.pixels or DEFAULT_MAX_PIXELS, args.testdata)
    else:
        oom(device, args.side)
    return 0


if __name__ == "__main__":
    sys.exit(main())
