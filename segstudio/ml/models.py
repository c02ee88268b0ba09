"""Named registry of segmentation architectures: torchvision's DeepLabV3 / FCN / LR-ASPP, our DeepLabV3+,
and the seed papers' U-Net, SegNet and DeepLab v2 (`ml.archs_seed`). Names and descriptions live in the
torch-free `ml.catalog` (the GUI and the CLI's help list them from there).

`build_model(arch, num_classes)` returns an `nn.Module` whose forward gives a dict with "out" (and "aux"
where the arch has an auxiliary head), logits at input resolution. Unknown names raise a
`ModelError` listing the choices (the segmentation_models.pytorch pattern).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    VGG16_BN_Weights,
)
from torchvision.models import segmentation as tvseg
from torchvision.models._api import WeightsEnum

from segstudio.core.errors import SegStudioError
from segstudio.core.task_handle import TaskHandle
from segstudio.ml import archs_seed, catalog, deeplabv3plus

__all__ = [
    "ARCHS",
    "DEFAULT_ARCH",
    "FINETUNE_ARCHS",
    "FINETUNE_DEFAULT_ARCH",
    "ArchInfo",
    "ModelError",
    "arch_info",
    "available_archs",
    "build_model",
    "class_dependent_keys",
    "load_pretrained_backbone",
]

#: inference's arch when neither a checkpoint nor the user names one (torchvision publishes VOC weights for it)
DEFAULT_ARCH = "deeplabv3_mobilenet_v3_large"
FINETUNE_ARCHS, FINETUNE_DEFAULT_ARCH = catalog.FINETUNE_ARCHS, catalog.FINETUNE_DEFAULT_ARCH


class ModelError(SegStudioError):
    """Unknown architecture or a model that cannot be built as asked."""


@dataclass(frozen=True)
class ArchInfo:
    name: str
    build: Callable[[int, bool], nn.Module]  # (num_classes, aux_loss) -> model
    has_aux: bool
    backbone_weights: WeightsEnum
    #: torchvision's COCO-with-VOC-labels weights (21 classes), when published for this arch
    published_weights: WeightsEnum | None
    description: str


def _tv(fn: Callable[..., nn.Module]) -> Callable[[int, bool], nn.Module]:
    def build(num_classes: int, aux_loss: bool) -> nn.Module:
        return fn(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_loss)

    return build


def _lraspp(num_classes: int, aux_loss: bool) -> nn.Module:
    return tvseg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)


def _no_aux(fn: Callable[[int], nn.Module]) -> Callable[[int, bool], nn.Module]:
    return lambda num_classes, aux_loss: fn(num_classes)


_R50, _R101, _MNV3 = (
    ResNet50_Weights.IMAGENET1K_V1,
    ResNet101_Weights.IMAGENET1K_V1,
    MobileNet_V3_Large_Weights.IMAGENET1K_V1,
)
_R34, _VGG16BN = ResNet34_Weights.IMAGENET1K_V1, VGG16_BN_Weights.IMAGENET1K_V1
_COCO = "COCO_WITH_VOC_LABELS_V1"


def _info(
    name: str,
    build: Callable[[int, bool], nn.Module],
    has_aux: bool,
    backbone: WeightsEnum,
    published: WeightsEnum | None,
) -> ArchInfo:
    return ArchInfo(name, build, has_aux, backbone, published, catalog.describe(name))


def _published(enum: type[WeightsEnum]) -> WeightsEnum:
    return enum[_COCO]  # type: ignore[misc]


ARCHS: dict[str, ArchInfo] = {
    info.name: info
    for info in (
        _info("deeplabv3_resnet50", _tv(tvseg.deeplabv3_resnet50), True, _R50, _published(tvseg.DeepLabV3_ResNet50_Weights)),
        _info("deeplabv3_resnet101", _tv(tvseg.deeplabv3_resnet101), True, _R101, _published(tvseg.DeepLabV3_ResNet101_Weights)),
        _info("deeplabv3_mobilenet_v3_large", _tv(tvseg.deeplabv3_mobilenet_v3_large), True, _MNV3,
              _published(tvseg.DeepLabV3_MobileNet_V3_Large_Weights)),
        _info("fcn_resnet50", _tv(tvseg.fcn_resnet50), True, _R50, _published(tvseg.FCN_ResNet50_Weights)),
        _info("fcn_resnet101", _tv(tvseg.fcn_resnet101), True, _R101, _published(tvseg.FCN_ResNet101_Weights)),
        _info("lraspp_mobilenet_v3_large", _lraspp, False, _MNV3, _published(tvseg.LRASPP_MobileNet_V3_Large_Weights)),
        _info("deeplabv3plus_resnet50", _no_aux(deeplabv3plus.deeplabv3plus_resnet50), False, _R50, None),
        _info("deeplabv3plus_mobilenet_v3_large", _no_aux(deeplabv3plus.deeplabv3plus_mobilenet_v3_large), False, _MNV3, None),
        _info("unet_resnet34", _no_aux(archs_seed.unet_resnet34), False, _R34, None),
        _info("unet_mobilenet_v3_large", _no_aux(archs_seed.unet_mobilenet_v3_large), False, _MNV3, None),
        _info("segnet_vgg16_bn", _no_aux(archs_seed.segnet_vgg16_bn), False, _VGG16BN, None),
        _info("deeplabv2_resnet101", _no_aux(archs_seed.deeplabv2_resnet101), False, _R101, None),
    )
}  # fmt: skip
if set(ARCHS) != set(catalog.CATALOG):  # the torch-free catalog (GUI, CLI help) must list exactly these
    raise ImportError(f"ml.catalog and ml.models disagree: {sorted(set(ARCHS) ^ set(catalog.CATALOG))}")


def available_archs() -> list[str]:
    return sorted(ARCHS)


def arch_info(arch: str) -> ArchInfo:
    try:
        return ARCHS[arch]
    except KeyError:
        raise ModelError(f"unknown model {arch!r}; choose one of: {', '.join(available_archs())}") from None


def build_model(
    arch: str,
    num_classes: int,
    pretrained_backbone: bool = False,
    aux_loss: bool | None = None,
    handle: TaskHandle | None = None,
) -> nn.Module:
    """A freshly initialised model with `num_classes` outputs.

    `aux_loss=None` means "the arch's usual setting" (an auxiliary head where torchvision's published
    weights have one, so they load strictly). `pretrained_backbone` loads ImageNet weights into the
    backbone through torchvision's cache (see `ml.hub`; offline raises `WeightsUnavailableError`).
    """
    info = arch_info(arch)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"a model needs at least one class, got num_classes={num_classes!r}")
    aux = info.has_aux if aux_loss is None else bool(aux_loss and info.has_aux)
    model = info.build(num_classes, aux)
    if pretrained_backbone:
        load_pretrained_backbone(model, arch, handle)
    return model


def load_pretrained_backbone(model: nn.Module, arch: str, handle: TaskHandle | None = None) -> None:
    """Copy ImageNet weights into `model.backbone` (torchvision keys, `features.` prefix stripped for
    MobileNet and VGG; the classifier layers the backbone does not have are skipped)."""
    from segstudio.ml.hub import fetch_state_dict

    state = fetch_state_dict(arch_info(arch).backbone_weights, handle)
    target = model.backbone.state_dict()
    mapped = {}
    for key, value in state.items():
        short = key.removeprefix("features.")
        if short in target:
            mapped[short] = value
    missing = set(target) - set(mapped)
    if missing:
        raise ModelError(
            f"ImageNet weights for {arch} do not cover the backbone (missing e.g. {sorted(missing)[:3]})"
        )
    model.backbone.load_state_dict(mapped)


@functools.lru_cache(maxsize=None)
def class_dependent_keys(arch: str, aux_loss: bool = True) -> frozenset[str]:
    """State-dict keys whose first dimension is the class count (the classifier rows), found by
    building the arch twice on the meta device with different class counts."""
    with torch.device("meta"):
        a = build_model(arch, 2, aux_loss=aux_loss).state_dict()
        b = build_model(arch, 3, aux_loss=aux_loss).state_dict()
    return frozenset(key for key in a if a[key].shape != b[key].shape)
