"""The trainer: fine-tune (or train) a segmentation model on a `TrainManifest`, torchrun-ready.

In the spirit of torchvision's `references/segmentation/train.py` (DeepLab recipe: SGD + poly LR,
auxiliary loss, 255 ignored, confusion-matrix validation summed across ranks, rank-0 checkpoints,
`--resume`), but as a library: no patched `print`, no mutated args, the backend chosen from the
device, progress as JSON lines (`ml.progress`) and stopping through a callback so a GUI's Cancel or a
SIGTERM keeps the best checkpoint so far.

Outputs in `manifest.output_dir`:
  best.pt    the best checkpoint so far (our checkpoint format, written atomically)
  resume.pt  optimizer/scheduler/epoch state after each epoch; removed when a run completes
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from segstudio.core.atomic import atomic_writer
from segstudio.core.errors import CheckpointError, SegStudioError
from segstudio.core.schemes import VOC_CLASSES, LabelScheme
from segstudio.ml.augment import IGNORE_INDEX, AugmentConfig, eval_transform, train_transform
from segstudio.ml.data import RepeatDataset, SegmentationDataset, balanced_class_weights, class_pixel_counts
from segstudio.ml.manifest import BaseSpec, ManifestError, TrainManifest
from segstudio.ml.distributed import DistContext
from segstudio.ml.evaluate import evaluate, metrics_record
from segstudio.ml.progress import ProgressWriter

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "train",
    "build_start_model",
    "poly_factor",
    "state_hash",
    "BEST_NAME",
    "RESUME_NAME",
    "OPTIMIZERS",
    "PRECISIONS",
]

BEST_NAME = "best.pt"
RESUME_NAME = "resume.pt"
OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: tests set this to a folder; every rank then writes `rank<N>.sha256` of its final weights there
HASH_DIR_ENV = "SEGSTUDIO_TRAIN_HASH_DIR"


class TrainingError(SegStudioError):
    """Training cannot start or continue as asked (no data, bad settings, a resume that does not fit)."""


@dataclass
class TrainConfig:
    """Every training setting; a manifest's `settings` and the CLI's flags fill it."""

    arch: str | None = None
    epochs: int = 30
    time_budget_s: float | None = None  # stop (and finish the poly schedule) after this many seconds
    optimizer: str = "sgd"
    lr: float | None = None  # None: 0.01 for SGD, 1e-4 for AdamW
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch: int = 4
    crop: int = 384
    scale_min: float = 0.5
    scale_max: float = 2.0
    jitter: float = 0.2
    hflip: float = 0.5
    max_side: int = 1024
    freeze_backbone: bool = False
    aux_weight: float = 0.5
    #: BatchNorm running-stat momentum while training; None keeps the arch's. torchvision's MobileNetV3
    #: uses 0.01, so after a few hundred steps (a typical fine-tune) the eval-mode statistics still lag
    #: far behind the weights and validation collapses; 0.1 (PyTorch's default) tracks them.
    bn_momentum: float | None = 0.1
    class_weights: str = "none"  # "none" | "balanced"
    patience: int = 10  # epochs without val-mIoU gain before stopping; 0 = never stop early
    min_iters_per_epoch: int = 10
    seed: int | None = 0
    deterministic: bool = False
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None  # None: on CUDA and CPU (faster convolutions), off on MPS
    workers: int = 2
    cache_images: bool = True
    baseline_eval: bool = True  # validate the starting model first, for the before/after comparison

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.class_weights not in ("none", "balanced"):
            raise TrainingError(f"unknown class weighting {self.class_weights!r}; choose none or balanced")
        if self.batch < 2:
            raise TrainingError("--batch must be at least 2 (batch normalisation needs two samples per step)")
        if self.epochs < 1:
            raise TrainingError("--epochs must be at least 1")
        if self.crop < 16:
            raise TrainingError("--crop must be at least 16 pixels")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise TrainingError("--time-budget must be positive (seconds)")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.01 if self.optimizer == "sgd" else 1e-4

    def augment(self, mean: tuple[float, ...], std: tuple[float, ...]) -> AugmentConfig:
        return AugmentConfig(crop=self.crop, scale_min=self.scale_min, scale_max=self.scale_max, hflip=self.hflip,
                             jitter=self.jitter, max_side=self.max_side, mean=tuple(mean), std=tuple(std))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ManifestError(f"unknown training setting(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass
class TrainResult:
    reason: str  # completed | early_stop | time_budget | cancelled
    checkpoint: Path | None
    version: str | None
    parent: str | None
    arch: str
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline_miou: float | None = None
    best_miou: float | None = None
    best_epoch: int | None = None
    epochs_run: int = 0
    fingerprint: str = ""


def poly_factor(progress: float, power: float = 0.9) -> float:
    """DeepLab's poly schedule: lr = base * (1 - progress) ** 0.9, progress in [0, 1]."""
    return max(0.0, 1.0 - min(1.0, max(0.0, progress))) ** power


def state_hash(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (tests compare ranks with it)."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------- model


def _with_aux(model: nn.Module, arch: str, num_classes: int) -> nn.Module:
    """Give the model its arch's auxiliary head (fresh) when a checkpoint came without one."""
    from segstudio.ml.models import arch_info, build_model

    if arch_info(arch).has_aux and getattr(model, "aux_classifier", None) is None:
        model.aux_classifier = build_model(arch, num_classes, aux_loss=True).aux_classifier
    return model


def _load_into(model: nn.Module, arch: str, state: dict[str, torch.Tensor], names: list[str] | None,
               scheme: LabelScheme, where: str, warn: Callable[[str], None]) -> None:
    """Load weights; classifier rows are remapped by class name, and with no shared name only the rest loads."""
    from segstudio.ml.models import class_dependent_keys
    from segstudio.ml.weights import apply_state_dict

    state = {k.removeprefix("module."): v for k, v in state.items()}
    has_aux = any(k.startswith("aux_classifier.") for k in state)
    aux = getattr(model, "aux_classifier", None)
    if aux is not None and not has_aux:
        model.aux_classifier = None  # load the rest strictly; the head is put back fresh
    if aux is None:
        state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    shared = names is not None and {n.casefold() for n in names} & {n.casefold() for n in scheme.names}
    try:
        if names is not None and not shared:
            keys = class_dependent_keys(arch)
            kept = {k: v for k, v in state.items() if k not in keys}
            apply_state_dict(model, arch, {**kept, **{k: v for k, v in model.state_dict().items() if k in keys}},
                             None, scheme, False, where)
            warn(f"{where} shares no class name with the scheme; its classifier starts fresh")
        else:
            apply_state_dict(model, arch, state, names, scheme, remap_by_name=True, where=where)
    finally:
        if aux is not None and getattr(model, "aux_classifier", None) is None:
            model.aux_classifier = aux
    if names is not None and [n.casefold() for n in names] != [n.casefold() for n in scheme.names]:
        kept_names = [n for n in scheme.names if n.casefold() in {m.casefold() for m in names}]
        warn(f"classes differ from {where}: classifier rebuilt, weights kept for {', '.join(kept_names) or 'none'}")


def build_start_model(
    base: BaseSpec, arch: str | None, scheme: LabelScheme, seed: int | None = 0,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[nn.Module, str, str | None, str, dict[str, list[float]]]:
    """(model, arch, parent version, description, normalisation) for the starting point `base`."""
    from segstudio.ml.models import DEFAULT_ARCH, arch_info, build_model
    from segstudio.ml.weights import IMAGENET_NORMALIZATION, load_checkpoint

    norm = {k: list(v) for k, v in IMAGENET_NORMALIZATION.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else seed)  # fresh layers start identically on every rank/run
        if base.kind == "checkpoint":
            ckpt = load_checkpoint(base.checkpoint)  # type: ignore[arg-type]
            ckpt_arch = ckpt.arch or arch or DEFAULT_ARCH
            if arch and ckpt.arch and arch != ckpt.arch:
                raise TrainingError(
                    f"the base model {base.version or base.checkpoint} is a {ckpt.arch}, not {arch}; "
                    f"drop --arch to fine-tune it, or use --base scratch to train a new {arch}"
                )
            model = build_model(ckpt_arch, scheme.num_classes)
            where = f"model {base.version}" if base.version else f"checkpoint {Path(base.checkpoint).name}"  # type: ignore[arg-type]
            _load_into(model, ckpt_arch, ckpt.state_dict, ckpt.class_names, scheme, where, warn)
            norm = {k: list(map(float, v)) for k, v in ckpt.normalization.items()}
            return _with_aux(model, ckpt_arch, scheme.num_classes), ckpt_arch, base.version, where, norm
        arch = arch or DEFAULT_ARCH
        info = arch_info(arch)
        if base.kind in ("torchvision", "auto"):
            from segstudio.ml.hub import WeightsUnavailableError, cache_path, fetch_state_dict

            published = info.published_weights
            if published is not None and (base.kind == "torchvision" or cache_path(published).exists()):
                try:
                    state = fetch_state_dict(published)
                except WeightsUnavailableError:
                    if base.kind == "torchvision" and not cache_path(info.backbone_weights).exists():
                        raise
                else:
                    model = build_model(arch, scheme.num_classes)
                    _load_into(model, arch, state, list(VOC_CLASSES), scheme, f"torchvision {published.name}", warn)
                    return _with_aux(model, arch, scheme.num_classes), arch, None, f"torchvision {published.name}", norm
            if base.kind == "torchvision" or cache_path(info.backbone_weights).exists():
                model = build_model(arch, scheme.num_classes, pretrained_backbone=True)
                return model, arch, None, f"ImageNet backbone ({info.backbone_weights.name})", norm
            warn("no torchvision weights are cached (offline?); training from scratch")
        model = build_model(arch, scheme.num_classes)
        return model, arch, None, "scratch", norm


def _set_train_mode(model: nn.Module, freeze_backbone: bool) -> None:
    """Train mode, but a frozen backbone stays in eval mode (its BatchNorm statistics are kept too)."""
    model.train()
    if freeze_backbone:
        getattr(model, "module", model).backbone.eval()


# ----------------------------------------------------------------------------------------- loop


def _precision(config: TrainConfig, device: torch.device) -> str:
    if config.precision != "auto":
        if config.precision == "fp16" and device.type != "cuda":
            raise TrainingError("fp16 mixed precision needs a CUDA GPU; use --precision bf16 or fp32")
        return config.precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and "AMX" in str(torch.backends.cpu.get_cpu_capability()):
        return "bf16"  # bf16 only pays off on CPUs with AMX tiles; elsewhere it is slower than fp32
    return "fp32"


def _autocast(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def _param_groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
    """torchvision's recipe: heads learn at the base rate, the auxiliary head at 10x; frozen params left out."""
    groups = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("aux_classifier.")],
         "lr": lr},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("aux_classifier.")],
         "lr": lr * 10},
    ]
    return [g for g in groups if g["params"]]


def _ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy over labelled pixels (class-weighted like F.cross_entropy's mean).

    Written as sum / count so a batch whose pixels are all 255 gives 0 instead of NaN without
    asking the GPU whether any pixel is labelled (that question would stall every step).
    """
    total = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum")
    valid = target != IGNORE_INDEX
    if weight is None:
        count = valid.sum()
    else:
        count = (weight[target.masked_fill(~valid, 0)] * valid).sum()
    return total / count.clamp(min=1)


def _loss(outputs: dict[str, torch.Tensor], target: torch.Tensor, weight: torch.Tensor | None, aux_weight: float):
    """Cross-entropy (255 ignored) + weighted auxiliary loss."""
    loss = _ce(outputs["out"], target, weight)
    if outputs.get("aux") is not None and aux_weight > 0:
        loss = loss + aux_weight * _ce(outputs["aux"], target, weight)
    return loss


def _save_state(path: Path, payload: dict[str, Any]) -> None:
    with atomic_writer(path) as handle:
        torch.save(payload, handle)


def _seed_worker(worker_id: int) -> None:
    # DataLoader seeds torch (and `random`) per worker; numpy follows torch's seed for OpenCV-free code paths.
    np.random.seed(torch.initial_seed() % 2**32)


def train(
    manifest: TrainManifest,
    config: TrainConfig,
    progress: ProgressWriter | None = None,
    dist: DistContext | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train on `manifest` with `config`; returns what was produced (rank 0 writes the files)."""
    from segstudio.ml.device import pick_device

    own_dist = dist is None
    dist = dist or DistContext.from_env()
    device = dist.device_for(pick_device(config.device))
    dist.init(device)
    progress = progress or ProgressWriter(enabled=dist.is_main)
    should_stop = should_stop or (lambda: False)
    # process-wide switches the run may flip (deterministic option, cuDNN autotuning): put them back after it
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    try:
        return _train(manifest, config, progress, dist, device, should_stop, resume)
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.benchmark = benchmark
        if own_dist:
            dist.shutdown()


def _train(manifest: TrainManifest, config: TrainConfig, progress: ProgressWriter, dist: DistContext,
           device: torch.device, should_stop: Callable[[], bool], resume: bool) -> TrainResult:
    scheme = manifest.label_scheme()
    names = scheme.names
    num_classes = scheme.num_classes
    if not manifest.train:
        raise TrainingError("no training images: mark some corrected images as done (train split) first")
    out_dir = Path(manifest.output_dir)
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    best_path, resume_path = out_dir / BEST_NAME, out_dir / RESUME_NAME
    fingerprint = manifest.fingerprint()
    warn = (lambda message: progress.emit("warning", message=message))

    seed = config.seed
    if seed is not None:
        torch.manual_seed(seed + dist.rank)
        np.random.seed((seed + dist.rank) % 2**32)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model, arch, parent, base_desc, norm = build_start_model(manifest.base, manifest.arch or config.arch, scheme,
                                                             seed, warn)
    state: dict[str, Any] | None = None
    if resume:
        if not resume_path.is_file():
            raise TrainingError(f"nothing to resume: {resume_path} does not exist; start a new run without --resume")
        try:
            state = torch.load(resume_path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise CheckpointError(f"cannot read resume state {resume_path}: {error}; start a new run") from None
        if state.get("fingerprint") != fingerprint or state.get("arch") != arch:
            raise TrainingError(
                f"{resume_path} belongs to another run (different images, classes or architecture); "
                "start a new run without --resume"
            )
        model.load_state_dict(state["model"])

    if config.bn_momentum is not None:
        for layer in model.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.momentum = config.bn_momentum
    if config.freeze_backbone:
        model.backbone.requires_grad_(False)
    precision = _precision(config, device)
    autocast = _autocast(precision, device)
    channels_last = config.channels_last if config.channels_last is not None else device.type in ("cuda", "cpu")
    if dist.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    module = model
    if dist.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # data
    aug = config.augment(tuple(norm["mean"]), tuple(norm["std"]))
    base_train = SegmentationDataset(manifest.train, train_transform(aug), cache=config.cache_images)
    train_set = RepeatDataset(base_train, config.batch * dist.world_size * config.min_iters_per_epoch)
    val_set = SegmentationDataset(manifest.val, eval_transform(aug), cache=config.cache_images)
    generator = torch.Generator().manual_seed((seed or 0) + dist.rank)
    if dist.enabled:
        sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                     seed=seed or 0, drop_last=True)
    else:
        sampler = RandomSampler(train_set, generator=generator)
    loader = DataLoader(train_set, batch_size=config.batch, sampler=sampler, num_workers=config.workers,
                        drop_last=True, pin_memory=device.type == "cuda", persistent_workers=config.workers > 0,
                        worker_init_fn=_seed_worker, generator=generator)
    iters_per_epoch = len(loader)
    total_iters = iters_per_epoch * config.epochs
    weight = None
    if config.class_weights == "balanced":
        weight = torch.from_numpy(balanced_class_weights(class_pixel_counts(base_train, num_classes))).to(device)

    lr = config.learning_rate
    groups = _param_groups(module, lr)
    if not groups:
        raise TrainingError("nothing to train: every parameter is frozen")
    fused = device.type == "cuda"  # one kernel per step instead of one per tensor group: small models are launch-bound
    if config.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=lr, momentum=config.momentum,
                                                           weight_decay=config.weight_decay, fused=fused or None)
    else:
        optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay, fused=fused or None)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

    start_epoch, iteration, elapsed_before = 1, 0, 0.0
    best_miou: float | None = None
    best_epoch: int | None = None
    best_metrics: dict[str, Any] = {}
    baseline_miou: float | None = None
    bad_epochs = 0
    history: list[dict[str, Any]] = []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"]) + 1
        iteration = int(state["iteration"])
        elapsed_before = float(state["elapsed"])
        best_miou, best_epoch = state.get("best_miou"), state.get("best_epoch")
        best_metrics = dict(state.get("best_metrics") or {})
        baseline_miou = state.get("baseline_miou")
        bad_epochs = int(state.get("bad_epochs", 0))
        history = list(state.get("history") or [])
        if "rng" in state:
            torch.set_rng_state(state["rng"])

    progress.emit(
        "start", epochs=config.epochs, iters_per_epoch=iters_per_epoch, train_images=len(manifest.train),
        val_images=len(manifest.val), classes=names, device=str(device), world_size=dist.world_size, arch=arch,
        base=base_desc, parent=parent, version=manifest.version, precision=precision,
        resumed_from=(start_epoch - 1) if state is not None else None, time_budget_s=config.time_budget_s,
        output_dir=str(out_dir), fingerprint=fingerprint,
    )

    def validate(epoch: int) -> dict[str, Any] | None:
        if not manifest.val:
            return None
        dist.broadcast_buffers(module)
        cm = evaluate(module, val_set, num_classes, device, dist, autocast, workers=0, channels_last=channels_last)
        return metrics_record(cm, names)

    def provenance(epochs_run: int) -> dict[str, Any]:
        return {
            "training_set_fingerprint": fingerprint, "train_images": len(manifest.train),
            "val_images": len(manifest.val), "base": base_desc, "epochs": epochs_run, "best_epoch": best_epoch,
            "device": str(device), "world_size": dist.world_size, "precision": precision,
            "config": config.to_dict(), "max_side": config.max_side,
        }

    def save_best(epoch: int, metrics: dict[str, Any]) -> None:
        if dist.is_main:
            from segstudio.ml.weights import save_checkpoint

            save_checkpoint(best_path, module, arch, scheme, metrics=metrics, provenance=provenance(epoch),
                            version=manifest.version, parent=parent, normalization=norm)
            progress.emit("checkpoint", path=str(best_path), epoch=epoch, version=manifest.version, metrics=metrics)

    if state is None and config.baseline_eval and manifest.val:
        base_metrics = validate(0)
        assert base_metrics is not None
        baseline_miou = base_metrics["miou"]
        progress.emit("val", epoch=0, **base_metrics, best_miou=None, improved=False, baseline=True)

    started = time.monotonic()
    reason = "completed"
    epoch = start_epoch - 1
    budget = config.time_budget_s

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    def fraction() -> float:
        frac = iteration / max(1, total_iters)
        if budget:
            frac = max(frac, elapsed() / budget)
        return min(1.0, frac)

    def eta() -> float | None:
        frac = fraction()
        return elapsed() * (1 - frac) / frac if frac > 0 else None

    for epoch in range(start_epoch, config.epochs + 1):
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        _set_train_mode(model, config.freeze_backbone)
        loss_sum = torch.zeros(2, dtype=torch.float64, device=device)
        steps_done = 0
        stop = None
        tick, seen = time.monotonic(), 0
        last_step = tick
        for step, (images, targets) in enumerate(loader, start=1):
            halt = should_stop()
            over = bool(budget and elapsed() >= budget)
            if dist.enabled:
                flags = torch.tensor([float(halt), float(over)], device=device if device.type == "cuda" else "cpu")
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
                halt, over = bool(flags[0] > 0), bool(flags[1] > 0)
            if halt or over:
                stop = "cancelled" if halt else "time_budget"
                break
            factor = poly_factor(fraction())
            for group, base_lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base_lr * factor
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = targets.to(device, non_blocking=True)
            with autocast():
                outputs = model(images)
            loss = _loss(outputs, targets, weight, config.aux_weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            iteration += 1
            loss_value = loss.detach()
            loss_sum[0] += loss_value  # stays on the device: no host sync per step
            steps_done += 1
            seen += images.shape[0] * dist.world_size
            forced = step == 1 or step == iters_per_epoch
            if dist.is_main and (forced or progress.wants_batch()):
                loss_float = float(loss_value)  # syncs: only when an event goes out
                now = time.monotonic()
                progress.batch(force=True, epoch=epoch, iter=step, iters=iters_per_epoch, loss=loss_float,
                               lr=optimizer.param_groups[0]["lr"], images_per_s=seen / max(1e-9, now - tick),
                               step_s=now - last_step, eta_s=eta())
            last_step = time.monotonic()
        loss_sum[1] = steps_done
        dist.all_reduce_sum(loss_sum)
        mean_loss = float(loss_sum[0] / loss_sum[1]) if float(loss_sum[1]) > 0 else None
        progress.emit("epoch", epoch=epoch, loss=mean_loss, lr=optimizer.param_groups[0]["lr"],
                      time_s=time.monotonic() - tick, eta_s=eta(), iterations=iteration)
        record: dict[str, Any] = {"epoch": epoch, "loss": mean_loss}
        if stop == "cancelled" and float(loss_sum[1]) == 0:
            reason = stop
            epoch -= 1
            break
        metrics = validate(epoch)
        improved = False
        if metrics is not None:
            miou = metrics["miou"] if metrics["miou"] is not None else 0.0
            improved = best_miou is None or miou > best_miou + 1e-6
            if improved:
                best_miou, best_epoch, best_metrics, bad_epochs = miou, epoch, metrics, 0
            else:
                bad_epochs += 1
            record["miou"] = metrics["miou"]
            progress.emit("val", epoch=epoch, **metrics, best_miou=best_miou, improved=improved)
        else:
            improved, best_epoch = True, epoch  # no val split: the latest weights are the best we know
        if improved:
            save_best(epoch, best_metrics)
        history.append(record)
        if stop is not None:
            reason = stop
            break
        if config.patience and bad_epochs >= config.patience:
            reason = "early_stop"
            break
        if budget and elapsed() >= budget:
            reason = "time_budget"
            break
        if epoch < config.epochs and dist.is_main:
            _save_state(resume_path, {
                "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                "iteration": iteration, "elapsed": elapsed(), "best_miou": best_miou, "best_epoch": best_epoch,
                "best_metrics": best_metrics, "baseline_miou": baseline_miou, "bad_epochs": bad_epochs,
                "history": history, "fingerprint": fingerprint, "arch": arch, "rng": torch.get_rng_state(),
            })

    dist.broadcast_buffers(module)
    if os.environ.get(HASH_DIR_ENV):
        hash_dir = Path(os.environ[HASH_DIR_ENV])
        hash_dir.mkdir(parents=True, exist_ok=True)
        (hash_dir / f"rank{dist.rank}.sha256").write_text(state_hash(module) + "\n")
    if dist.is_main and reason != "cancelled" and resume_path.exists():
        resume_path.unlink()  # the run is complete: nothing left to resume
    dist.barrier()
    checkpoint = best_path if best_path.exists() else None
    progress.emit("done", reason=reason, checkpoint=str(checkpoint) if checkpoint else None,
                  version=manifest.version, parent=parent, arch=arch, best_miou=best_miou,
                  baseline_miou=baseline_miou, best_epoch=best_epoch, epochs_run=epoch, metrics=best_metrics)
    return TrainResult(reason=reason, checkpoint=checkpoint, version=manifest.version, parent=parent, arch=arch,
                       metrics=best_metrics, baseline_miou=baseline_miou, best_miou=best_miou,
                       best_epoch=best_epoch, epochs_run=epoch, fingerprint=fingerprint)

