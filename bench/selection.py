"""How far a few val frames can be trusted to pick a model: the gain of a fine-tuned model over its
starting model, estimated on k of 12 held-out CamVid frames versus all 12.

Run: `.venv/bin/python -m bench.selection [--data ../shared/testdata/camvid_sample] [--epochs 4,4]
      [--crop 192] [--max-side 240] [--threads 2]`

Two real models on real photos: A = a LR-ASPP MobileNetV3 trained from scratch on 12 CamVid frames
(first epochs), B = A fine-tuned further on the same 12 frames (what a user's next run does). Both
are evaluated on the 12 other frames (per-image confusion matrices, `evaluate(per_image=True)`).
For every k-frame subset (k = 4, 8) it reports how often the subset's gain has the opposite sign of
the 12-frame gain, the median error of the subset's gain, and the median ± (`ml.selection`) it
reports, so docs/fine-tuning.md's "4 frames cannot decide" is a measured statement. JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_sample"
ARCH = "lraspp_mobilenet_v3_large"


def _samples(data: Path) -> tuple[list, list, dict]:
    from segstudio.ml.manifest import Sample

    images = sorted((data / "images").glob("*.png"))
    if len(images) < 24:
        raise SystemExit(f"need the 24-frame CamVid sample at {data}")
    samples = [Sample(str(p), str(data / "masks" / p.name), key=p.name) for p in images[:24]]
    return samples[0::2], samples[1::2], json.loads((data / "scheme.json").read_text())


def _train(train: list, scheme: dict, out: Path, base: object, epochs: int, settings: dict) -> Path:
    from segstudio.ml.manifest import TrainManifest
    from segstudio.ml.progress import ProgressWriter
    from segstudio.ml.train import TrainConfig
    from segstudio.ml.train import train as run

    manifest = TrainManifest(
        scheme=scheme,
        train=train,
        val=[],
        output_dir=str(out),
        base=base,  # type: ignore[arg-type]
        arch=ARCH,
        settings={},
    )
    result = run(manifest, TrainConfig(epochs=epochs, **settings), progress=ProgressWriter(enabled=False))
    assert result.checkpoint is not None
    return result.checkpoint


def _per_image(checkpoint: Path, held_out: list, scheme: dict, max_side: int) -> np.ndarray:
    import torch

    from segstudio.core.schemes import LabelScheme
    from segstudio.ml.augment import eval_transform
    from segstudio.ml.data import SegmentationDataset
    from segstudio.ml.evaluate import evaluate
    from segstudio.ml.spec import ModelSpec
    from segstudio.ml.train import TrainConfig
    from segstudio.ml.weights import load_model

    label_scheme = LabelScheme.from_dict(scheme)
    loaded = load_model(ModelSpec(weights="file", path=str(checkpoint)), label_scheme, torch.device("cpu"))
    aug = TrainConfig(max_side=max_side).augment(
        tuple(loaded.normalization["mean"]), tuple(loaded.normalization["std"])
    )
    dataset = SegmentationDataset(held_out, eval_transform(aug))
    return evaluate(loaded.model, dataset, label_scheme.num_classes, torch.device("cpu"), per_image=True)


def _subsets(start: np.ndarray, new: np.ndarray, k: int, full_gain: float) -> dict:
    from segstudio.ml.selection import gain_estimate

    gains, spreads, flips = [], [], 0
    for subset in itertools.combinations(range(start.shape[0]), k):
        index = list(subset)
        estimate = gain_estimate(start[index], new[index], reps=300)
        gains.append(estimate.value)
        spreads.append(estimate.plus_minus)
        flips += (estimate.value > 0) != (full_gain > 0)
    return {
        "k": k,
        "subsets": len(gains),
        "sign_differs_pct": round(100 * flips / len(gains), 1),
        "median_abs_error_points": round(100 * statistics.median(abs(g - full_gain) for g in gains), 2),
        "median_plus_minus_points": round(100 * statistics.median(spreads), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", default="4,4", help="epochs of model A, then of B's fine-tune")
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--max-side", type=int, default=240)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from segstudio.ml.manifest import BaseSpec
    from segstudio.ml.selection import gain_estimate, miou_estimate

    torch.set_num_threads(args.threads)
    train, held_out, scheme = _samples(args.data)
    first, second = (int(e) for e in args.epochs.split(","))
    settings = {
        "crop": args.crop,
        "max_side": args.max_side,
        "batch": 4,
        "workers": 0,
        "device": "cpu",
        "min_iters_per_epoch": 10,
        "lr": 0.02,
        "patience": 0,
        "baseline_eval": False,
        "precision": "float32",
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        a = _train(train, scheme, Path(tmp) / "a", BaseSpec("scratch"), first, settings)
        b = _train(train, scheme, Path(tmp) / "b", BaseSpec("checkpoint", str(a)), second, settings)
        start, new = (
            _per_image(a, held_out, scheme, args.max_side),
            _per_image(b, held_out, scheme, args.max_side),
        )
    full = gain_estimate(start, new)
    print(
        json.dumps(
            {
                "bench": "selection",
                "frames": start.shape[0],
                "miou_start": miou_estimate(start).to_dict(),
                "miou_new": miou_estimate(new).to_dict(),
                "gain": full.to_dict(),
                "train_s": round(time.monotonic() - started, 1),
            }
        )
    )
    for k in (4, 8):
        print(json.dumps({"bench": "selection", **_subsets(start, new, k, float(full.value or 0.0))}))


if __name__ == "__main__":
    main()
