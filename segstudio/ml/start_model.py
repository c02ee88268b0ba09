"""The model a run starts from, and its preparation for training on a device (setup, step 1 of a run).

`build_start_model` turns a `BaseSpec` (a project version or checkpoint file, torchvision weights,
an ImageNet backbone, or scratch) into a model for the scheme's classes, keeping classifier rows by
class name; `prepare_model` applies the run's settings (BatchNorm momentum, frozen backbone,
SyncBatchNorm, device, memory format, DDP).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from segstudio.core.schemes import VOC_CLASSES, LabelScheme
from segstudio.ml.distributed import DistContext
from segstudio.ml.manifest import BaseSpec
from segstudio.ml.train_config import TrainConfig, TrainingError

__all__ = ["build_start_model", "describe_auto_start", "prepare_model", "set_train_mode"]


def _with_aux(model: nn.Module, arch: str, num_classes: int) -> nn.Module:
    """Give the model its arch's auxiliary head (fresh) when a checkpoint came without one."""
    from segstudio.ml.models import arch_info, build_model

    if arch_info(arch).has_aux and getattr(model, "aux_classifier", None) is None:
        model.aux_classifier = build_model(arch, num_classes, aux_loss=True).aux_classifier
    return model


def _load_into(
    model: nn.Module,
    arch: str,
    state: dict[str, torch.Tensor],
    names: list[str] | None,
    scheme: LabelScheme,
    where: str,
    warn: Callable[[str], None],
) -> None:
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
            apply_state_dict(
                model,
                arch,
                {**kept, **{k: v for k, v in model.state_dict().items() if k in keys}},
                None,
                scheme,
                False,
                where,
            )
            warn(f"{where} shares no class name with the scheme; its classifier starts fresh")
        else:
            apply_state_dict(model, arch, state, names, scheme, remap_by_name=True, where=where)
    finally:
        if aux is not None and getattr(model, "aux_classifier", None) is None:
            model.aux_classifier = aux
    if names is not None and [n.casefold() for n in names] != [n.casefold() for n in scheme.names]:
        kept_names = [n for n in scheme.names if n.casefold() in {m.casefold() for m in names}]
        warn(
            f"classes differ from {where}: classifier rebuilt, weights kept for {', '.join(kept_names) or 'none'}"
        )


def build_start_model(
    base: BaseSpec,
    arch: str | None,
    scheme: LabelScheme,
    seed: int | None = 0,
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
                    _load_into(
                        model, arch, state, list(VOC_CLASSES), scheme, f"torchvision {published.name}", warn
                    )
                    return (
                        _with_aux(model, arch, scheme.num_classes),
                        arch,
                        None,
                        f"torchvision {published.name}",
                        norm,
                    )
            if base.kind == "torchvision" or cache_path(info.backbone_weights).exists():
                model = build_model(arch, scheme.num_classes, pretrained_backbone=True)
                return model, arch, None, f"ImageNet backbone ({info.backbone_weights.name})", norm
            warn("no torchvision weights are cached (offline?); training from scratch")
        model = build_model(arch, scheme.num_classes)
        return model, arch, None, "scratch", norm


def set_train_mode(model: nn.Module, freeze_backbone: bool) -> None:
    """Train mode, but a frozen backbone stays in eval mode (its BatchNorm statistics are kept too)."""
    model.train()
    if freeze_backbone:
        getattr(model, "module", model).backbone.eval()


def prepare_model(
    model: nn.Module, config: TrainConfig, device: torch.device, dist: DistContext, channels_last: bool
) -> tuple[nn.Module, nn.Module]:
    """(the model to call, the bare module to save/evaluate): settings applied, on `device`, DDP-wrapped if needed."""
    if config.bn_momentum is not None:
        for layer in model.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.momentum = config.bn_momentum
    if config.freeze_backbone:
        model.backbone.requires_grad_(False)
    if dist.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    module = model
    if dist.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return model, module


def describe_auto_start(arch: str | None) -> str:
    """What `BaseSpec("auto")` starts from for `arch` on this machine, in the words `build_start_model`
    reports (a front end shows it before training; the cache decides, as in `build_start_model`)."""
    from segstudio.ml.hub import cache_path
    from segstudio.ml.models import DEFAULT_ARCH, arch_info

    info = arch_info(arch or DEFAULT_ARCH)
    published = info.published_weights
    if published is not None and cache_path(published).exists():
        return f"torchvision {published.name} weights (cached)"
    if cache_path(info.backbone_weights).exists():
        return f"an ImageNet backbone ({info.backbone_weights.name}, cached) with new heads"
    return "a new model from scratch (no torchvision weights are cached)"
