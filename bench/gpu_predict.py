"""Pre-annotation throughput: `segstudio predict` on a folder of photos vs a plain torchvision loop, same run.

    python -m bench.gpu_predict --device cuda --count 240            # CamVid frames, repeated to 240
    python -m bench.gpu_predict --device cpu --count 4 --side 96     # the dry run's tiny version

The folder holds `--count` photos: the CamVid frames of the shared test data (symbolic links, repeated
until there are enough; synthetic photos when the test data is absent). Three timed runs over it, in
one process so none pays a different start-up:
  * `plain`: what a user of torchvision would write: decode (PIL), to the device, normalise, forward
    (the same torchvision architecture, random weights, fp32, batch 1), argmax, write a PNG per photo;
  * `ours_no_crf`: `segstudio predict FOLDER --no-crf` (the real CLI entry point, called in-process)
    with its defaults (precision auto, batch 4 on CUDA, decode-ahead thread), writing labels,
    confidence and the stored probabilities into the project;
  * `ours_crf`: the same with the default dense CRF (`--crf`, the project's default scale).
Each run is preceded by an untimed warm-up on 4 photos (cuDNN autotuning, project creation). Per run:
wall seconds, photos/s, and the GPU busy % sampled by `nvidia-smi -lms 200` in the background
(`bench.gpu_busy`). Goals: ours_no_crf >= 0.9x plain, GPU busy >= 80 % of the active window.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.gpu_busy import GpuBusy

TESTDATA_CANDIDATES = ("shared/testdata", "../shared/testdata", "/work/shared/testdata")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def find_testdata(explicit: str | None = None) -> Path | None:
    """The shared test data folder: --testdata / $TESTDATA, the checkout's shared/, ../shared, /work/shared."""
    for candidate in ([explicit] if explicit else []) + list(TESTDATA_CANDIDATES):
        path = Path(candidate)
        if (path / "camvid_sample" / "images").is_dir() or (path / "camvid_more" / "images").is_dir():
            return path.resolve()
    return None


def camvid_frames(testdata: Path | None) -> list[Path]:
    if testdata is None:
        return []
    frames: list[Path] = []
    for sub in ("camvid_more", "camvid_sample"):
        folder = testdata / sub / "images"
        if folder.is_dir():
            frames += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return frames


def make_folder(folder: Path, count: int, frames: list[Path], side: int | None) -> str:
    """`count` photos in `folder`: links to `frames` (repeated), or resized/synthetic copies; says which."""
    folder.mkdir(parents=True, exist_ok=True)
    if frames and side is None:
        for i in range(count):
            src = frames[i % len(frames)]
            (folder / f"photo_{i:04d}{src.suffix.lower()}").symlink_to(src)
        return f"camvid ({len(frames)} distinct frames, linked)"
    from skimage import data as skdata

    sources = [np.asarray(Image.open(p).convert("RGB")) for p in frames[:8]] or [
        skdata.astronaut(),
        skdata.coffee(),
        skdata.chelsea(),
    ]
    width = side or 480
    for i in range(count):
        photo = Image.fromarray(sources[i % len(sources)]).resize((width, width * 3 // 4))
        photo.save(folder / f"photo_{i:04d}.png")
    return f"{'camvid' if frames else 'synthetic'} ({len(sources)} distinct, resized to {width}px wide)"


def plain_loop(paths: list[Path], out_dir: Path, arch: str, classes: int, device: str) -> dict[str, Any]:
    """The torchvision-user's loop (decode, forward, argmax, write), timed end to end with model build."""
    import torch
    import torchvision.models.segmentation as tvseg

    t0 = time.perf_counter()
    if hasattr(tvseg, arch):
        model = getattr(tvseg, arch)(weights=None, weights_backbone=None, num_classes=classes, aux_loss=False)
        source = f"torchvision.models.segmentation.{arch}"
    else:  # an arch of our own (U-Net, DeepLabv3+ ...): the same module, driven by the plain loop
        from segstudio.ml.models import build_model

        model, source = build_model(arch, classes, aux_loss=False), f"segstudio build_model({arch})"
    model = model.to(device).eval()
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        for path in paths:
            image = np.array(Image.open(path).convert("RGB"))
            x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float().div_(255)
            logits = model((x - mean) / std)["out"]
            labels = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
            Image.fromarray(labels).save(out_dir / f"{path.stem}.png")
    return {"seconds": time.perf_counter() - t0, "model": source}


def ours(folder: Path, device: str, crf: bool, limit: int | None, extra: list[str]) -> dict[str, Any]:
    """`segstudio predict` through the CLI's entry point; returns its wall time and what it printed."""
    from segstudio.cli import main as cli_main

    args = ["predict", str(folder), "--weights", "none", "--device", device, "--overwrite", "--quiet"]
    args += ["--crf" if crf else "--no-crf", *extra] + (["--limit", str(limit)] if limit else [])
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        status = cli_main(args)
    seconds = time.perf_counter() - t0
    text = err.getvalue()
    if status != 0:
        raise RuntimeError(f"segstudio predict exited {status}: {text[-1500:]}")
    match = re.search(r"precision (\S+?),", text)
    return {"seconds": seconds, "precision": match.group(1) if match else None, "log": text[-400:]}


def _timed_run(
    run: str,
    paths: list[Path],
    folder: Path,
    tmp: Path,
    model: str,
    classes: int,
    device: str,
    extra: list[str],
) -> dict[str, Any]:
    """One run after its untimed warm-up on 4 photos, with the GPU sampled meanwhile."""
    if run == "plain":
        plain_loop(paths[:4], tmp / "plain_warmup", model, classes, device)
        with GpuBusy() as busy:
            result = plain_loop(paths, tmp / "plain", model, classes, device)
    else:
        ours(folder, device, run == "ours_crf", 4, extra)
        with GpuBusy() as busy:
            result = ours(folder, device, run == "ours_crf", None, extra)
        result.pop("log", None)
    result["photos_per_s"] = round(len(paths) / result["seconds"], 2)
    result["seconds"] = round(result["seconds"], 2)
    result["gpu_busy"] = busy.summary()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--count", type=int, default=240, help="photos in the folder (>= 200 for the issue)")
    parser.add_argument(
        "--side", type=int, help="resize copies to this width (tiny dry runs); default: links"
    )
    parser.add_argument("--testdata", help="shared test data folder (default: found next to the checkout)")
    parser.add_argument("--model", default="deeplabv3_mobilenet_v3_large", help="architecture for both sides")
    parser.add_argument("--runs", default="plain,ours_no_crf,ours_crf", help="which runs, in this order")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from segstudio.ml.device import device_label, pick_device

    device = str(pick_device(args.device))
    frames = camvid_frames(find_testdata(args.testdata))
    record: dict[str, Any] = {"bench": "gpu_predict", "device": device_label(torch.device(device))}
    with tempfile.TemporaryDirectory(prefix="gpu_predict_") as tmp:
        folder = Path(tmp) / "photos"
        record["photos"] = make_folder(folder, args.count, frames, args.side)
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        record["count"] = len(paths)
        record["size"] = list(Image.open(paths[0]).size)
        extra = ["--model", args.model]
        ours(folder, device, False, 4, extra)  # warm-up: creates the project (21 VOC classes), cuDNN
        from segstudio.core.project import Project

        with Project.open(folder) as project:
            classes = len(project.scheme.names)
        record.update(model=args.model, classes=classes)
        for run in [r for r in args.runs.split(",") if r]:
            if run not in ("plain", "ours_no_crf", "ours_crf"):
                raise SystemExit(f"unknown run {run!r} (plain, ours_no_crf, ours_crf)")
            try:  # one run failing (say the CRF's module missing) keeps the others' figures
                record[run] = _timed_run(run, paths, folder, Path(tmp), args.model, classes, device, extra)
            except Exception as error:
                record[run] = {"error": f"{type(error).__name__}: {str(error)[-800:]}"}
        shutil.rmtree(Path(tmp) / "plain", ignore_errors=True)
    plain = record.get("plain", {}).get("photos_per_s")
    for run in ("ours_no_crf", "ours_crf"):
        if plain and record.get(run, {}).get("photos_per_s"):
            record[f"ratio_{run.removeprefix('ours_')}_vs_plain"] = round(
                record[run]["photos_per_s"] / plain, 3
            )
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
