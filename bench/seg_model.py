"""The segmentation model the click model starts from, trained on camvid_more TRAIN frames only; prints JSON.

    python -m bench.seg_model --data ../shared/testdata/camvid_more --out DIR [--half a|b]
        [--minutes 8] [--threads 1]

The real trainer (`segstudio.ml.train`), from scratch (no pretrained weights can be downloaded here),
LR-ASPP MobileNetV3 (the arch that learns most per CPU second, docs/fine-tuning.md), no val split
(the val frames are kept for the click benchmark; without a val split the trainer keeps the latest
weights as best.pt). `--half a|b` trains on every other train frame (a: even positions, b: odd):
the two cross-fitting models of docs/click-model.md, each predicting the frames the other trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ARCH = "lraspp_mobilenet_v3_large"


def train_stems(data: Path, half: str | None) -> list[str]:
    lines = [line.split() for line in (data / "split.txt").read_text().splitlines() if line.strip()]
    stems = [stem for stem, split in lines if split == "train"]
    if half is not None:
        stems = stems[{"a": 0, "b": 1}[half] :: 2]
    return stems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.seg_model", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--half", choices=("a", "b"), default=None)
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--crop", type=int, default=160)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-side", type=int, default=240, help="long side cap (480 -> 240: 4x fewer pixels)")
    args = p.parse_args(argv)

    import torch

    from segstudio.ml.manifest import BaseSpec, Sample, TrainManifest
    from segstudio.ml.progress import ProgressWriter
    from segstudio.ml.train import TrainConfig, train

    torch.set_num_threads(args.threads)
    stems = train_stems(args.data, args.half)
    samples = [
        Sample(str(args.data / "images" / f"{s}.png"), str(args.data / "masks" / f"{s}.png"), key=s)
        for s in stems
    ]
    manifest = TrainManifest(
        scheme=json.loads((args.data / "scheme.json").read_text()),
        train=samples,
        val=[],
        output_dir=str(args.out),
        base=BaseSpec("scratch"),
        arch=ARCH,
    )
    config = TrainConfig(
        epochs=10_000,
        time_budget_s=60 * args.minutes,
        batch=args.batch,
        crop=args.crop,
        max_side=args.max_side,
        workers=0,
        patience=0,
        baseline_eval=False,
        device="cpu",
        seed=0,
    )
    writer = ProgressWriter(enabled=False)
    started = time.monotonic()
    result = train(manifest, config, progress=writer)
    epochs = [e for e in writer.events if e["event"] == "epoch"]
    print(
        json.dumps(
            {
                "out": str(args.out / "best.pt"),
                "half": args.half,
                "train_images": len(samples),
                "epochs": len(epochs),
                "last_loss": epochs[-1]["loss"] if epochs else None,
                "wall_s": round(time.monotonic() - started, 1),
                "reason": getattr(result, "reason", None),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
