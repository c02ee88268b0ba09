"""Training throughput (images/s) of `segstudio.ml.train` vs a torchvision-reference-style loop.

Run: `.venv/bin/python -m bench.train [--archs deeplabv3_mobilenet_v3_large,deeplabv3_resnet50 | all]
      [--crops 256] [--large] [--steps 4] [--warmup 2] [--workers 2] [--device auto]
      [--precisions fp32,bf16] [--peak-memory] [--ours-only]`
(`--archs all --crops 256,512` on a GPU: every registered arch against the reference at both crops.)

`--precisions fp32,bf16` compares like with like: per precision, our trainer at that precision against
the reference with autocast at the same dtype (torchvision's `--amp`, with bf16 instead of fp16; the
GradScaler only for fp16), one JSON line per (arch, crop, precision). Without it the default pairing
is kept (our `--precision` against the fp32 reference, plus the fp16-AMP reference on CUDA).
`--peak-memory` adds `torch.cuda.max_memory_allocated` of each loop (CUDA only); `--ours-only` skips
the reference (the memory run of `bench/gpu_proof.sh`: crop 512, batch 8).

Both sides train the same model (random init, same arch, crop 256 or 512, batch 4) on the same
PNG files (photos from scikit-image with generated masks), with the same scale/crop/flip
augmentation, the same DataLoader worker count, SGD + poly LR and the auxiliary loss. The reference
is written the way torchvision's `references/segmentation/train.py` does it: PIL transforms
(RandomResize, RandomHorizontalFlip, RandomCrop, PILToTensor, ToDtype, Normalize), a dataset that
decodes each file per item, fp32 (plus its `--amp` fp16 mode on CUDA), `optimizer.zero_grad()`,
`loss.backward()`, `optimizer.step()`, `lr_scheduler.step()`. Ours is the real trainer with its
defaults (decoded-image cache, v2 tensor transforms, channels_last, bf16 autocast on CUDA).

Every step after a few warm-up ones is timed (data loading included, so a slow input pipeline
shows); a line of JSON per (arch, crop) gives the median images/s per step of both and their
ratio (goal >= 1.0).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision.transforms import functional as TVF
from torchvision.transforms import v2

from segstudio.ml.augment import IMAGENET_MEAN, IMAGENET_STD
from segstudio.ml.device import pick_device
from segstudio.ml.manifest import BaseSpec
from segstudio.ml.models import available_archs, build_model
from segstudio.ml.precision import canonical_precision
from segstudio.ml.progress import ProgressWriter
from segstudio.ml.synthetic import make_shapes_sample, shapes_scheme_dict
from segstudio.ml.train import TrainConfig, train

NUM_CLASSES = 4
IMAGE_SIZE = (384, 512)  # h, w: a typical annotated photo after the app's size cap


def make_files(folder: Path, count: int) -> list[tuple[Path, Path]]:
    """`count` photo-like images with generated masks, as PNG files."""
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(count):
        photo = np.asarray(Image.fromarray(photos[i % len(photos)]).resize(IMAGE_SIZE[::-1]))
        _, small_mask = make_shapes_sample(rng, 64)
        mask = np.asarray(Image.fromarray(small_mask).resize(IMAGE_SIZE[::-1], Image.NEAREST))
        image_path, mask_path = folder / f"img{i}.png", folder / f"mask{i}.png"
        Image.fromarray(np.roll(photo, 17 * i, axis=1)).save(image_path)
        Image.fromarray(mask).save(mask_path)
        pairs.append((image_path, mask_path))
    return pairs


# ------------------------------------------------------------------------------ the reference loop


class RefCompose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image, target):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target


class RefRandomResize:
    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, image, target):
        size = random.randint(self.min_size, self.max_size)
        return TVF.resize(image, size), TVF.resize(target, size, interpolation=v2.InterpolationMode.NEAREST)


class RefRandomHorizontalFlip:
    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, image, target):
        if random.random() < self.p:
            return TVF.hflip(image), TVF.hflip(target)
        return image, target


def _pad_if_smaller(img, size: int, fill: int):
    w, h = img.size
    if min(w, h) < size:
        return TVF.pad(img, [0, 0, max(0, size - w), max(0, size - h)], fill=fill)
    return img


class RefRandomCrop:
    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image, target):
        image, target = _pad_if_smaller(image, self.size, 0), _pad_if_smaller(target, self.size, 255)
        from torchvision import transforms as T

        top, left, h, w = T.RandomCrop.get_params(image, (self.size, self.size))
        return TVF.crop(image, top, left, h, w), TVF.crop(target, top, left, h, w)


class RefToTensorNormalize:
    def __call__(self, image, target):
        image = TVF.convert_image_dtype(TVF.pil_to_tensor(image), torch.float)
        image = TVF.normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        return image, torch.as_tensor(np.array(target), dtype=torch.int64)


class RefDataset(Dataset):
    """Like torchvision's VOCSegmentation: decode the files for every item."""

    def __init__(self, pairs, transforms, repeats: int) -> None:
        self.pairs, self.transforms, self.repeats = pairs, transforms, repeats

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def __getitem__(self, index):
        image_path, mask_path = self.pairs[index % len(self.pairs)]
        return self.transforms(Image.open(image_path).convert("RGB"), Image.open(mask_path))


def reference_rates(
    arch: str,
    pairs,
    crop: int,
    batch: int,
    steps: int,
    warmup: int,
    workers: int,
    device: torch.device,
    amp: bool | str,
    on_step: Callable[[], None] | None = None,
) -> list[float]:
    """images/s of each timed step of the reference-style loop (data loading included).

    `amp`: False (fp32), True or "float16" (torchvision's `--amp`: fp16 autocast + GradScaler), or
    "bfloat16" (bf16 autocast; bf16 has fp32's range, so no GradScaler)."""
    amp_dtype = {True: torch.float16, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(amp)
    base = min(IMAGE_SIZE)
    transforms = RefCompose(
        [
            RefRandomResize(int(0.5 * base), int(2.0 * base)),
            RefRandomHorizontalFlip(0.5),
            RefRandomCrop(crop),
            RefToTensorNormalize(),
        ]
    )
    dataset = RefDataset(pairs, transforms, repeats=max(1, (steps + warmup) * batch // len(pairs) + 1))
    sampler = RandomSampler(dataset, num_samples=(steps + warmup) * batch)
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
    )
    model = build_model(arch, NUM_CLASSES).to(device)
    params = [
        {"params": [p for n, p in model.named_parameters() if not n.startswith("aux_classifier.")]},
        {"params": [p for n, p in model.named_parameters() if n.startswith("aux_classifier.")], "lr": 0.1},
    ]
    optimizer = torch.optim.SGD([g for g in params if g["params"]], lr=0.01, momentum=0.9, weight_decay=1e-4)
    total = steps + warmup
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda x: (1 - x / total) ** 0.9)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    def criterion(inputs, target):
        losses = {name: F.cross_entropy(x, target, ignore_index=255) for name, x in inputs.items()}
        return losses["out"] + 0.5 * losses["aux"] if "aux" in losses else losses["out"]

    step_times = []
    model.train()
    _sync(device)
    last = time.perf_counter()
    for image, target in loader:
        image, target = image.to(device), target.to(device)
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            output = model(image)
            loss = criterion(output, target)
        optimizer.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        _sync(device)
        now = time.perf_counter()
        step_times.append(now - last)
        if on_step is not None:
            on_step()
        last = time.perf_counter()
    return [batch / t for t in step_times[warmup:]]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------ ours


def our_rates(
    arch: str,
    pairs,
    crop: int,
    batch: int,
    steps: int,
    warmup: int,
    workers: int,
    device: torch.device,
    folder: Path,
    writer: ProgressWriter | None = None,
    **overrides,
) -> tuple[list[float], str]:
    """images/s of each timed step of the real trainer (from its per-step progress events).

    `writer` replaces the progress writer (it must emit every batch event: `bench.gpu_profile`
    steps its profiler there)."""
    from segstudio.ml.manifest import Sample, TrainManifest

    samples = [Sample(str(i), str(m), key=i.name) for i, m in pairs]
    manifest = TrainManifest(
        scheme=shapes_scheme_dict(),
        train=samples,
        val=[],
        output_dir=str(folder / f"run-{arch}-{crop}"),
        base=BaseSpec("scratch"),
        arch=arch,
    )
    config = TrainConfig(
        epochs=1,
        batch=batch,
        crop=crop,
        workers=workers,
        min_iters_per_epoch=steps + warmup,
        device=str(device),
        patience=0,
        baseline_eval=False,
        max_side=max(IMAGE_SIZE),
        **overrides,
    )
    writer = writer or ProgressWriter(enabled=False, batch_interval_s=0.0)
    train(manifest, config, progress=writer)
    batches = [e for e in writer.events if e["event"] == "batch"]
    start = next(e for e in writer.events if e["event"] == "start")
    return [batch / e["step_s"] for e in batches[warmup : warmup + steps]], start["precision"]


def expand_archs(spec: str) -> list[str]:
    """Arch names in run order; the word `all` adds every registered arch not yet listed, so a
    time-limited run can put the archs it cares most about first and still cover the others."""
    out: list[str] = []
    for name in (n.strip() for n in spec.split(",")):
        for arch in available_archs() if name == "all" else [name] if name else []:
            if arch not in out:
                out.append(arch)
    return out


def _measured(device: torch.device, peak_memory: bool, fn, *args, **kwargs):
    """fn's result, and its peak CUDA memory in MiB when asked (None elsewhere)."""
    if not (peak_memory and device.type == "cuda"):
        return fn(*args, **kwargs), None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    result = fn(*args, **kwargs)
    return result, round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def _compare(
    args: argparse.Namespace,
    arch: str,
    crop: int,
    precision: str,
    matched: list[str] | None,
    common: tuple,
    folder: Path,
    layout: bool | None,
) -> dict:
    """One (arch, crop, precision) line: our trainer, then (unless --ours-only) the reference."""
    pairs, device = common[0], common[-1]
    torch.manual_seed(0)
    random.seed(0)
    (ours, ours_precision), ours_peak = _measured(
        device, args.peak_memory, our_rates, arch, pairs, crop, *common[1:], folder,
        precision=precision, channels_last=layout,
    )  # fmt: skip
    record = {
        "bench": "train",
        "arch": arch,
        "crop": crop,
        "batch": args.batch,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "workers": args.workers,
        "timed_steps": args.steps,
        "ours_images_per_s": round(statistics.median(ours), 2),
        "ours_precision": ours_precision,
    }
    if ours_peak is not None:
        record["ours_peak_mb"] = ours_peak
    if not args.ours_only:
        amp = False if matched is None or precision == "float32" else precision
        ref, ref_peak = _measured(
            device, args.peak_memory, reference_rates, arch, pairs, crop, *common[1:], amp=amp
        )
        record["reference_images_per_s"] = round(statistics.median(ref), 2)
        record["reference_precision"] = amp or ("fp32" if matched is None else "float32")
        record["ratio"] = round(statistics.median(ours) / statistics.median(ref), 3)
        if ref_peak is not None:
            record["reference_peak_mb"] = ref_peak
        if matched is None and device.type == "cuda":
            ref_amp = reference_rates(arch, pairs, crop, *common[1:], amp=True)
            record["reference_amp_images_per_s"] = round(statistics.median(ref_amp), 2)
            record["ratio_vs_amp"] = round(statistics.median(ours) / statistics.median(ref_amp), 3)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--archs",
        default="deeplabv3_mobilenet_v3_large,deeplabv3_resnet50",
        help="comma-separated arch names; 'all' stands for every registered arch not named before it "
        "(a,b,all: a and b first, then the rest)",
    )
    parser.add_argument("--crops", default="256")
    parser.add_argument("--large", action="store_true", help="also crop 512")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per loop")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed first steps (workers start, allocator, cuDNN)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision", default="auto", help="our trainer's precision (auto, fp32, bf16, fp16)"
    )
    parser.add_argument(
        "--precisions",
        help="matched pairs instead: e.g. fp32,bf16 (ours at each precision vs the reference with "
        "autocast at the same dtype)",
    )
    parser.add_argument(
        "--channels-last", choices=("auto", "on", "off"), default="auto", help="our trainer's layout"
    )
    parser.add_argument("--peak-memory", action="store_true", help="peak CUDA memory of each loop")
    parser.add_argument("--ours-only", action="store_true", help="no reference loop (memory runs)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    crops = [int(c) for c in args.crops.split(",")] + ([512] if args.large else [])
    layout = {"auto": None, "on": True, "off": False}[args.channels_last]
    matched = [canonical_precision(p) for p in args.precisions.split(",")] if args.precisions else None
    archs = expand_archs(args.archs)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pairs = make_files(folder, args.images)
        common = (pairs, args.batch, args.steps, args.warmup, args.workers, device)
        failed = 0
        for arch in archs:
            for crop in crops:
                for precision in matched or [args.precision]:
                    try:  # one arch failing (out of memory, a missing op) keeps the others' figures
                        print(
                            json.dumps(
                                _compare(args, arch, crop, precision, matched, common, folder, layout)
                            ),
                            flush=True,
                        )
                    except Exception as error:
                        failed += 1
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        print(json.dumps({"bench": "train", "arch": arch, "crop": crop, "precision": precision,
                                          "error": f"{type(error).__name__}: {str(error)[:500]}"}), flush=True)  # fmt: skip
    if failed:
        raise SystemExit(f"{failed} comparison(s) failed (their lines carry the error)")


if __name__ == "__main__":
    main()
