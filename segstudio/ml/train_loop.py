"""The pieces of a training run the torchvision reference has too: loaders, optimizer, one epoch, validation.

`train_one_epoch` and `validate` are plain functions over a `Parts` bundle (what setup built), so the
run (`ml.train.Trainer`) stays a short sequence of calls and each piece can be read on its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler

from segstudio.ml.augment import IGNORE_INDEX, AugmentConfig, eval_transform, train_transform
from segstudio.ml.data import RepeatDataset, SegmentationDataset
from segstudio.ml.distributed import DistContext
from segstudio.ml.evaluate import evaluate, metrics_record
from segstudio.ml.manifest import TrainManifest
from segstudio.ml.progress import ProgressWriter
from segstudio.ml.start_model import set_train_mode
from segstudio.ml.train_config import TrainConfig, TrainingError

__all__ = [
    "EpochOutcome",
    "Parts",
    "Schedule",
    "autocast_for",
    "loss_fn",
    "make_loaders",
    "make_optimizer",
    "poly_factor",
    "resolve_precision",
    "train_one_epoch",
    "validate",
]

Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


def poly_factor(progress: float, power: float = 0.9) -> float:
    """DeepLab's poly schedule: lr = base * (1 - progress) ** 0.9, progress in [0, 1]."""
    return max(0.0, 1.0 - min(1.0, max(0.0, progress))) ** power


def resolve_precision(config: TrainConfig, device: torch.device) -> str:
    """The run's precision: the configured one, or for `auto` the fastest the device does well."""
    if config.precision != "auto":
        if config.precision == "float16" and device.type != "cuda":
            raise TrainingError(
                "float16 mixed precision needs a CUDA GPU; use --precision bfloat16 or float32"
            )
        return config.precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.type == "cpu" and "AMX" in str(torch.backends.cpu.get_cpu_capability()):
        return "bfloat16"  # bf16 only pays off on CPUs with AMX tiles; elsewhere it is slower than float32
    return "float32"


def autocast_for(precision: str, device: torch.device) -> Autocast:
    if precision == "float32":
        return contextlib.nullcontext
    dtype = torch.float16 if precision == "float16" else torch.bfloat16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


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


def loss_fn(
    outputs: dict[str, torch.Tensor], target: torch.Tensor, weight: torch.Tensor | None, aux_weight: float
) -> torch.Tensor:
    """Cross-entropy (255 ignored) + weighted auxiliary loss."""
    loss = _ce(outputs["out"], target, weight)
    if outputs.get("aux") is not None and aux_weight > 0:
        loss = loss + aux_weight * _ce(outputs["aux"], target, weight)
    return loss


def _seed_worker(worker_id: int) -> None:
    # DataLoader seeds torch (and `random`) per worker; numpy follows torch's seed for OpenCV-free code paths.
    np.random.seed(torch.initial_seed() % 2**32)


def make_loaders(
    manifest: TrainManifest, config: TrainConfig, aug: AugmentConfig, dist: DistContext, device: torch.device
) -> tuple[DataLoader, Sampler, SegmentationDataset, SegmentationDataset]:
    """(train loader, its sampler, the un-repeated train set, the val set); an epoch is at least
    `min_iters_per_epoch` steps, however few images there are."""
    seed = config.seed or 0
    base_train = SegmentationDataset(manifest.train, train_transform(aug), cache=config.cache_images)
    train_set = RepeatDataset(base_train, config.batch * dist.world_size * config.min_iters_per_epoch)
    val_set = SegmentationDataset(manifest.val, eval_transform(aug), cache=config.cache_images)
    generator = torch.Generator().manual_seed(seed + dist.rank)
    sampler: Sampler
    if dist.enabled:
        sampler = DistributedSampler(
            train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed, drop_last=True
        )
    else:
        sampler = RandomSampler(train_set, generator=generator)
    loader = DataLoader(
        train_set,
        batch_size=config.batch,
        sampler=sampler,
        num_workers=config.workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=config.workers > 0,
        worker_init_fn=_seed_worker,
        generator=generator,
    )
    return loader, sampler, base_train, val_set


def _param_groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
    """torchvision's recipe: heads learn at the base rate, the auxiliary head at 10x; frozen params left out."""
    groups = [
        {
            "params": [
                p
                for n, p in model.named_parameters()
                if p.requires_grad and not n.startswith("aux_classifier.")
            ],
            "lr": lr,
        },
        {
            "params": [
                p for n, p in model.named_parameters() if p.requires_grad and n.startswith("aux_classifier.")
            ],
            "lr": lr * 10,
        },
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(
    module: nn.Module, config: TrainConfig, device: torch.device, precision: str
) -> tuple[torch.optim.Optimizer, torch.amp.GradScaler, list[float]]:
    """(optimizer, gradient scaler, each group's base learning rate for the poly schedule)."""
    lr = config.learning_rate
    groups = _param_groups(module, lr)
    if not groups:
        raise TrainingError("nothing to train: every parameter is frozen")
    fused = (
        device.type == "cuda"
    )  # one kernel per step instead of one per tensor group: small models are launch-bound
    if config.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            groups, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, fused=fused or None
        )
    else:
        optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay, fused=fused or None)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    return optimizer, scaler, [g["lr"] for g in optimizer.param_groups]


@dataclass
class Schedule:
    """Progress through the run (iterations or the time budget, whichever is further) and its clock."""

    total_iters: int
    budget_s: float | None
    elapsed_before: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def over_budget(self) -> bool:
        return bool(self.budget_s and self.elapsed() >= self.budget_s)

    def fraction(self, iteration: int) -> float:
        frac = iteration / max(1, self.total_iters)
        if self.budget_s:
            frac = max(frac, self.elapsed() / self.budget_s)
        return min(1.0, frac)

    def eta(self, iteration: int) -> float | None:
        frac = self.fraction(iteration)
        return self.elapsed() * (1 - frac) / frac if frac > 0 else None


@dataclass
class Parts:
    """What setup built and every epoch uses."""

    model: nn.Module  # what to call (DDP-wrapped under torchrun)
    module: nn.Module  # the bare model: evaluated and saved
    loader: DataLoader
    sampler: Sampler
    val_set: SegmentationDataset
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    base_lrs: list[float]
    weight: torch.Tensor | None
    autocast: Autocast
    channels_last: bool
    device: torch.device


@dataclass
class EpochOutcome:
    mean_loss: float | None
    steps: int
    stop: str | None  # None | "cancelled" | "time_budget": why the epoch ended early
    iteration: int


def _stop_reason(
    should_stop: Callable[[], bool], schedule: Schedule, dist: DistContext, device: torch.device
) -> str | None:
    """Cancel or time budget, agreed across ranks (any rank's reason stops them all)."""
    halt, over = should_stop(), schedule.over_budget()
    if dist.enabled:
        flags = torch.tensor([float(halt), float(over)], device=device if device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        halt, over = bool(flags[0] > 0), bool(flags[1] > 0)
    return "cancelled" if halt else "time_budget" if over else None


def train_one_epoch(
    parts: Parts,
    config: TrainConfig,
    epoch: int,
    iteration: int,
    schedule: Schedule,
    dist: DistContext,
    progress: ProgressWriter,
    should_stop: Callable[[], bool],
) -> EpochOutcome:
    """One pass over the loader with the poly LR; stops early (between steps) on cancel or time budget."""
    if isinstance(parts.sampler, DistributedSampler):
        parts.sampler.set_epoch(epoch)
    set_train_mode(parts.model, config.freeze_backbone)
    optimizer, device = parts.optimizer, parts.device
    loss_sum = torch.zeros(2, dtype=torch.float64, device=device)
    steps, stop, seen = 0, None, 0
    tick = last_step = time.monotonic()
    iters = len(parts.loader)
    for step, (images, targets) in enumerate(parts.loader, start=1):
        stop = _stop_reason(should_stop, schedule, dist, device)
        if stop is not None:
            break
        factor = poly_factor(schedule.fraction(iteration))
        for group, base_lr in zip(optimizer.param_groups, parts.base_lrs):
            group["lr"] = base_lr * factor
        images = images.to(device, non_blocking=True)
        if parts.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with parts.autocast():
            outputs = parts.model(images)
        loss = loss_fn(outputs, targets, parts.weight, config.aux_weight)
        optimizer.zero_grad(set_to_none=True)
        parts.scaler.scale(loss).backward()
        parts.scaler.step(optimizer)
        parts.scaler.update()
        iteration += 1
        loss_value = loss.detach()
        loss_sum[0] += loss_value  # stays on the device: no host sync per step
        steps += 1
        seen += images.shape[0] * dist.world_size
        if dist.is_main and (step in (1, iters) or progress.wants_batch()):
            now = time.monotonic()  # float(loss) syncs: only when an event goes out
            progress.batch(
                force=True,
                epoch=epoch,
                iter=step,
                iters=iters,
                loss=float(loss_value),
                lr=optimizer.param_groups[0]["lr"],
                images_per_s=seen / max(1e-9, now - tick),
                step_s=now - last_step,
                eta_s=schedule.eta(iteration),
            )
        last_step = time.monotonic()
    loss_sum[1] = steps
    dist.all_reduce_sum(loss_sum)
    mean_loss = float(loss_sum[0] / loss_sum[1]) if float(loss_sum[1]) > 0 else None
    progress.emit(
        "epoch",
        epoch=epoch,
        loss=mean_loss,
        lr=optimizer.param_groups[0]["lr"],
        time_s=time.monotonic() - tick,
        eta_s=schedule.eta(iteration),
        iterations=iteration,
    )
    return EpochOutcome(mean_loss, int(loss_sum[1]), stop, iteration)


def validate(
    parts: Parts, num_classes: int, class_names: list[str], dist: DistContext
) -> tuple[dict[str, Any], np.ndarray] | None:
    """(metrics, per-image confusion matrices) of the current weights on the full val images; None
    without a val split. The metrics carry `miou_pm` (95 % bootstrap half-width) and `val_images`."""
    from segstudio.ml.selection import miou_estimate

    if len(parts.val_set) == 0:
        return None
    dist.broadcast_buffers(parts.module)
    per_image = evaluate(
        parts.module,
        parts.val_set,
        num_classes,
        parts.device,
        dist,
        parts.autocast,
        workers=0,
        channels_last=parts.channels_last,
        per_image=True,
    )
    metrics = metrics_record(per_image.sum(0), class_names)
    estimate = miou_estimate(per_image)
    metrics.update(miou_pm=estimate.plus_minus, val_images=estimate.n)
    return metrics, per_image
