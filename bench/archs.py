"""Which architecture learns most from a few corrected photos in a fixed CPU time budget.

Run: `.venv/bin/python -m bench.archs [--archs a,b,...|all] [--budget 45] [--crop 160] [--max-side 240]
      [--threads 1] [--data ../shared/testdata/camvid_sample]`

Every arch trains **from scratch** (no pretrained weights: the comparison is of the architectures,
not of what ImageNet taught their backbones) with the real trainer (`segstudio.ml.train`, its
defaults: SGD + poly LR over the run, the app's augmentation) on the CamVid sample's
real street photos (24 frames, 11 classes): 18 train, 6 val (every 4th frame). Each arch gets the
same **CPU-time** budget on one thread (the steps that fit it, measured per arch first; the trainer
rounds them up to whole passes over the 18 images, which `cpu_s` in the output shows), then is
validated once at the capped resolution, outside the budget. CPU time rather than wall time because
the machine is shared (8 engineers on 2 cores): a wall-clock budget would give whichever arch ran
while the neighbours were quiet more compute. One JSON line per arch: val mIoU, pixel accuracy,
training images per CPU-second and per wall-second, steps, and the load average before/after.
Archs run sequentially, the same seed and data order each.

The literature anchor is the SegNet paper's CamVid benchmark (TPAMI 2017: the same 11 classes and
source frames, 367 training / 233 test images at 360x480, trained to convergence on a GPU; 46.3 %
mIoU for SegNet-Basic as ChainerCV's reproduction quotes it): 15x the images and hours of GPU time,
so this bench ranks archs for the few-images-on-a-CPU case, it does not reproduce those numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "testdata" / "camvid_sample"
VAL_EVERY = 4  # every 4th frame (sorted by name, so all three CamVid sequences) is a val frame


def camvid_manifest(data: Path, output_dir: Path, arch: str | None, **settings: Any) -> Any:
    """A training manifest over the CamVid sample: 18 train / 6 val frames, from scratch."""
    from segstudio.ml.manifest import BaseSpec, Sample, TrainManifest

    images = sorted((data / "images").glob("*.png"))
    if not images:
        raise SystemExit(f"no CamVid sample at {data} (expected images/*.png, masks/*.png, scheme.json)")
    samples = [Sample(str(p), str(data / "masks" / p.name), key=p.name) for p in images]
    train = [s for i, s in enumerate(samples) if i % VAL_EVERY != VAL_EVERY - 1]
    val = [s for i, s in enumerate(samples) if i % VAL_EVERY == VAL_EVERY - 1]
    scheme = json.loads((data / "scheme.json").read_text())
    return TrainManifest(
        scheme=scheme,
        train=train,
        val=val,
        output_dir=str(output_dir),
        base=BaseSpec("scratch"),
        arch=arch,
        settings=dict(settings),
    )


def cpu_seconds_per_step(arch: str, num_classes: int, batch: int, crop: int) -> float:
    """CPU time of one training step (forward, loss, backward, SGD) at the trainer's CPU settings
    (fp32, channels_last): one warm-up step, then the faster of two timed ones."""
    import torch
    from torch.nn import functional as F

    from segstudio.ml.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, num_classes).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(batch, 3, crop, crop).contiguous(memory_format=torch.channels_last)
    targets = torch.randint(0, num_classes, (batch, crop, crop))
    times = []
    for _ in range(3):
        started = time.process_time()
        outputs = model(images)
        loss = F.cross_entropy(outputs["out"], targets)
        if "aux" in outputs:
            loss = loss + 0.5 * F.cross_entropy(outputs["aux"], targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.process_time() - started)
    return min(times[1:])


def run_arch(
    arch: str, data: Path, folder: Path, budget: float, crop: int, max_side: int, batch: int
) -> dict:
    """Train `arch` for the steps that fit `budget` CPU-seconds and return its JSON record.

    The budget is CPU time, not wall time: on a machine shared with other jobs, a wall-clock budget
    would hand whichever arch ran while the neighbours were quiet more compute. The step count is
    fixed up front (from `cpu_seconds_per_step`) so the trainer's poly LR schedule ends on time.
    """
    import torch

    from segstudio.ml.progress import ProgressWriter
    from segstudio.ml.train import TrainConfig, train

    manifest = camvid_manifest(data, folder / arch, arch)
    per_step = cpu_seconds_per_step(arch, len(manifest.scheme["classes"]), batch, crop)
    steps = max(2, round(budget / per_step))
    config = TrainConfig(
        epochs=1,
        min_iters_per_epoch=steps,
        batch=batch,
        crop=crop,
        max_side=max_side,
        workers=0,
        patience=0,
        baseline_eval=False,
        device="cpu",
        seed=0,
    )
    writer = ProgressWriter(enabled=False)
    load_before = os.getloadavg()[0]
    cpu_started, started = time.process_time(), time.monotonic()
    result = train(manifest, config, progress=writer)
    cpu, wall = time.process_time() - cpu_started, time.monotonic() - started
    epoch = next(e for e in writer.events if e["event"] == "epoch")
    metrics = result.metrics or {}
    return {
        "bench": "archs",
        "arch": arch,
        "budget_cpu_s": budget,
        "crop": crop,
        "max_side": max_side,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "train_images": len(manifest.train),
        "val_images": len(manifest.val),
        "steps": int(epoch["iterations"]),
        "cpu_s_per_step": round(per_step, 3),
        "images_per_cpu_s": round(batch / per_step, 2),
        "images_per_wall_s": round(int(epoch["iterations"]) * batch / max(1e-9, float(epoch["time_s"])), 2),
        "val_miou": None if result.best_miou is None else round(result.best_miou, 4),
        "val_pixel_accuracy": metrics.get("pixel_accuracy"),
        "train_loss": epoch["loss"],
        "params_m": round(
            sum(p.numel() for p in _model_params(arch, len(manifest.scheme["classes"]))) / 1e6, 2
        ),
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _model_params(arch: str, num_classes: int) -> list:
    import torch

    from segstudio.ml.models import build_model

    with torch.device("meta"):
        return list(build_model(arch, num_classes, aux_loss=False).parameters())


def main(argv: list[str] | None = None) -> int:
    from segstudio.ml.catalog import FINETUNE_ARCHS, arch_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--archs",
        default=",".join(FINETUNE_ARCHS),
        help="comma-separated names, or 'all' (default: the fine-tuning panel's choices)",
    )
    parser.add_argument(
        "--budget", type=float, default=45.0, help="training CPU-seconds per arch (default 45, on one thread)"
    )
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument(
        "--max-side", type=int, default=240, help="images' long side is capped to this (480 -> 240)"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    archs = arch_names() if args.archs == "all" else [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if a not in arch_names()]
    if unknown:
        print(f"unknown arch(s) {unknown}; choose from: {', '.join(arch_names())}", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            record = run_arch(arch, args.data, Path(tmp), args.budget, args.crop, args.max_side, args.batch)
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
