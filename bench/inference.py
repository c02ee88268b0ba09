"""Inference latency by stage (decode, preprocess, forward, CRF, postprocess), per model and image size.

    .venv/bin/python -m bench.inference                      # small default run (2 models, 3 reps)
    .venv/bin/python -m bench.inference --models deeplabv3_resnet50 --reps 5 --sizes 520x520

Prints one JSON line per measurement (medians in milliseconds) and a summary line per model/size:
  * float32 vs bfloat16 autocast + channels_last: forward time and argmax agreement with float32 (the
    reference, measured in the same run) -- the Predictor's "auto" precision relies on this figure;
  * dense CRF at full resolution (reference) vs reduced resolution (--crf-scales): time and argmax agreement;
  * overhead = (decode + preprocess + postprocess) / total; the goal is <= 10 %.
Models are randomly initialised (seeded) and their BatchNorm statistics re-estimated on the photo: without
that, a random model labels every pixel with one class and any agreement figure is trivially 1.0. Timings
do not depend on the weights; agreement does (a random model has small logit margins, hence many
near-ties: a pessimistic figure for a trained model).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segstudio.core.images import load_image
from segstudio.ml.crf import CRFParams, refine_probabilities
from segstudio.ml.device import device_label, pick_device
from segstudio.ml.models import build_model
from segstudio.ml.predict import Predictor
from segstudio.ml.tiling import iter_upsampled_bands

NUM_CLASSES = 21


def _photo(width: int, height: int) -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((width, height), Image.BILINEAR))


def _median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 2)


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _labels(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.empty((height, width), np.uint8)
    for top, band in iter_upsampled_bands(torch.from_numpy(probs), height, width):
        out[top : top + band.shape[1]] = band.argmax(0).numpy()
    return out


def _random_model(arch: str, image: np.ndarray) -> torch.nn.Module:
    """Seeded random init with BatchNorm statistics estimated on `image` (see the module docstring)."""
    torch.manual_seed(0)
    model = build_model(arch, NUM_CLASSES, aux_loss=False)
    x = Predictor(model, "cpu", precision="float32").preprocess(_small(image))
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(torch.cat([x, x.flip(-1)]))  # batch of 2: the ASPP pooling BN needs > 1 value per channel
    return model.eval()


def _small(image: np.ndarray, side: int = 512) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale)))))


def bench_model(
    arch: str, size: tuple[int, int], args: argparse.Namespace, device: torch.device, path: Path
) -> dict:
    width, height = size
    model = _random_model(arch, _photo(width, height))
    decode = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        image = load_image(path)
        decode.append(time.perf_counter() - t0)
    results = {}
    precisions = ["float32", "bfloat16"] if device.type == "cpu" else ["float32", "float16"]
    for precision in precisions:
        predictor = Predictor(model, device, precision=precision, max_side=args.max_side, tile_size=args.tile_size,
                              return_probabilities=False, sync_timings=True)  # fmt: skip
        predictor.predict(image)  # warm-up (allocator, oneDNN primitive cache, cuDNN autotune)
        stages: dict[str, list[float]] = {"preprocess": [], "forward": [], "postprocess": []}
        labels = None
        for _ in range(args.reps):
            result = predictor.predict(image)
            labels = result.labels
            for key in stages:
                stages[key].append(result.timings[key])
        results[precision] = ({k: _median_ms(v) for k, v in stages.items()}, labels)
        model = predictor.model  # channels_last conversion is kept by the next predictor if any
    ref_stages, ref_labels = results["float32"]
    majority = np.bincount(ref_labels.ravel(), minlength=NUM_CLASSES).max() / ref_labels.size
    record = {"bench": "inference", "arch": arch, "size": f"{width}x{height}", "device": device_label(device),
              "decode_ms": _median_ms(decode), "reps": args.reps,
              # how informative the agreement is: 1.0 means the float32 labels are one class everywhere
              "float32_majority_label_fraction": round(float(majority), 4)}  # fmt: skip
    for precision, (stages, labels) in results.items():
        record[precision] = stages
        if precision != "float32":
            record[precision]["argmax_agreement_vs_float32"] = round(float((labels == ref_labels).mean()), 5)
            record[precision]["forward_speedup_vs_float32"] = round(
                ref_stages["forward"] / stages["forward"], 2
            )
    _emit(record)
    return record


def bench_crf(arch: str, size: tuple[int, int], args: argparse.Namespace, device: torch.device) -> dict:
    """CRF on the model's probabilities for the photo: full resolution (reference) vs reduced."""
    width, height = size
    image = _photo(width, height)
    model = _random_model(arch, image)
    predictor = Predictor(
        model, device, precision="float32", max_side=args.max_side, tile_size=args.tile_size
    )
    probs = predictor.forward(predictor.preprocess(image)).cpu().numpy()
    record = {"bench": "crf", "size": f"{width}x{height}", "probabilities_from": arch, "iterations": 5}
    reference = None
    for scale in [1.0, *args.crf_scales]:
        params = CRFParams(scale=scale, max_pixels=max(4_000_000, width * height))
        times = []
        q = None
        for _ in range(args.crf_reps):
            t0 = time.perf_counter()
            q = refine_probabilities(image, probs, params)
            times.append(time.perf_counter() - t0)
        labels = _labels(q, height, width)
        entry = {"median_ms": _median_ms(times)}
        if reference is None:
            reference = (labels, entry["median_ms"])
        else:
            entry["argmax_agreement_vs_full"] = round(float((labels == reference[0]).mean()), 5)
            entry["speedup_vs_full"] = round(reference[1] / entry["median_ms"], 2)
        record[f"scale_{scale:g}"] = entry
    _emit(record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="lraspp_mobilenet_v3_large,deeplabv3_mobilenet_v3_large")
    parser.add_argument("--sizes", default="500x375,2048x1024")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--crf-reps", type=int, default=1)
    parser.add_argument("--crf-scales", default="2,4", type=lambda s: [float(x) for x in s.split(",") if x])
    parser.add_argument(
        "--max-side", type=int, default=2048, help="Predictor max_side (2048: both sizes at full res)"
    )
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    models = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            path = Path(tmp) / f"photo_{width}x{height}.jpg"
            buffer = io.BytesIO()
            Image.fromarray(_photo(width, height)).save(buffer, "JPEG", quality=92)
            path.write_bytes(buffer.getvalue())
            crf = bench_crf(models[0], (width, height), args, device)
            full_crf_ms = crf["scale_1"]["median_ms"]
            for arch in models:
                rec = bench_model(arch, (width, height), args, device, path)
                for precision in [p for p in ("float32", "bfloat16", "float16") if p in rec]:
                    s = rec[precision]
                    outside = rec["decode_ms"] + s["preprocess"] + s["postprocess"]
                    for crf_label, crf_ms in (("no_crf", 0.0), ("crf_full", full_crf_ms)):
                        total = outside + s["forward"] + crf_ms
                        _emit({"bench": "summary", "arch": arch, "size": rec["size"], "precision": precision,
                               "crf": crf_label, "total_ms": round(total, 1),
                               "outside_forward_and_crf_fraction": round(outside / total, 4),
                               "goal_met": outside / total <= 0.10})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
