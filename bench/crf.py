"""Dense CRF speed and fidelity: the default (fast) CRF vs full-resolution pydensecrf, same run, same kernels.

    .venv/bin/python -m bench.crf                 # 3 CamVid frames at 2048x1024 (19 classes) + 3 VOC photos
    .venv/bin/python -m bench.crf --frames 6 --reps 3

Inputs are real photos with truth from the shared test data (CamVid frames resized to 2048x1024, VOC
photos at 500x375-ish) and DCNN-like probabilities made from the truth (`ml.coarse`: stride 8, blurred,
logit gain 8, noise; padded to 19 classes for the Cityscapes-sized case). The reference is pydensecrf at
full resolution with the same kernel parameters (`scale` 1, no pixel cap), timed in the same process.
Prints one JSON line per image and a summary line: median times, speed-up and argmax agreement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segstudio.ml.coarse import coarse_probabilities
from segstudio.ml.crf import CRFParams, refine

TESTDATA = Path("/work/shared/testdata")


def _camvid(folder: Path, count: int, size: tuple[int, int]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for path in sorted((folder / "images").glob("*.png"))[:count]:
        image = np.array(Image.open(path).convert("RGB"))
        truth = np.array(Image.open(folder / "masks" / path.name))
        out.append((path.stem, cv2.resize(image, size, interpolation=cv2.INTER_CUBIC),
                    cv2.resize(truth, size, interpolation=cv2.INTER_NEAREST)))
    return out


def _voc(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for path in sorted((folder / "data_annotated").glob("*.jpg")):
        truth = np.array(Image.open(folder / "expected_voc" / "SegmentationClass" / f"{path.stem}.png").convert("P"))
        out.append((path.stem, np.array(Image.open(path).convert("RGB")), truth))
    return out


def _timed(fn, reps: int) -> tuple[np.ndarray, float, float]:
    """Result, median wall time and median CPU time (the CPU figure is steadier on a shared machine)."""
    times, cpu, result = [], [], None
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return result, statistics.median(times), statistics.median(cpu)


def bench_case(name: str, image: np.ndarray, probs: np.ndarray, params: CRFParams, reps: int) -> dict:
    reference_params = CRFParams(**{**params.to_dict(), "scale": 1.0, "max_pixels": image.shape[0] * image.shape[1]})
    reference, t_ref, c_ref = _timed(lambda: refine(image, probs, reference_params), reps)
    fast, t_fast, c_fast = _timed(lambda: refine(image, probs, params), reps)
    record = {"bench": "crf", "image": name, "size": f"{image.shape[1]}x{image.shape[0]}", "classes": probs.shape[0],
              "reference_s": round(t_ref, 3), "default_s": round(t_fast, 3), "speedup": round(t_ref / t_fast, 2),
              "reference_cpu_s": round(c_ref, 3), "default_cpu_s": round(c_fast, 3), "cpu_speedup": round(c_ref / c_fast, 2),
              "agreement": round(float((fast == reference).mean()), 5)}
    print(json.dumps(record), flush=True)
    return record


def summary(label: str, records: list[dict]) -> None:
    print(json.dumps({"bench": "crf_summary", "case": label, "images": len(records),
                      "median_reference_s": round(statistics.median(r["reference_s"] for r in records), 3),
                      "median_default_s": round(statistics.median(r["default_s"] for r in records), 3),
                      "median_speedup": round(statistics.median(r["speedup"] for r in records), 2),
                      "median_default_cpu_s": round(statistics.median(r["default_cpu_s"] for r in records), 3),
                      "median_cpu_speedup": round(statistics.median(r["cpu_speedup"] for r in records), 2),
                      "median_agreement": round(statistics.median(r["agreement"] for r in records), 5),
                      "min_agreement": min(r["agreement"] for r in records)}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3, help="CamVid frames at 2048x1024")
    parser.add_argument("--reps", type=int, default=1, help="timed repetitions per image (median)")
    parser.add_argument("--params", default="{}", help="CRF settings as JSON (default: CRFParams())")
    parser.add_argument("--skip-voc", action="store_true")
    args = parser.parse_args(argv)
    params = CRFParams.from_dict(json.loads(args.params))
    print(json.dumps({"bench": "crf_params", **params.to_dict()}), flush=True)
    big = []
    for name, image, truth in _camvid(TESTDATA / "camvid_sample", args.frames, (2048, 1024)):
        big.append(bench_case(name, image, coarse_probabilities(truth, 19), params, args.reps))
    summary("2048x1024", big)
    if args.skip_voc:
        return
    small = []
    for name, image, truth in _voc(TESTDATA / "labelme_voc_example"):
        small.append(bench_case(name, image, coarse_probabilities(truth, 21), params, max(3, args.reps)))
    summary("voc", small)


if __name__ == "__main__":
    main()
