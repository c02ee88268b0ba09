"""The architectures' names and one-line "when to use" descriptions, without importing torch.

`ml.models` builds these archs (its `ARCHS` registry takes each description from here, and refuses to
import if the two disagree); the GUI's fine-tuning panel and the CLI's `--help` list them from here so
neither pays torch's import time just to show a menu.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "FINETUNE_ARCHS", "FINETUNE_DEFAULT_ARCH", "ArchEntry", "arch_names", "describe"]


@dataclass(frozen=True)
class ArchEntry:
    name: str
    description: str  # one line: what it is and when to pick it
    finetune: bool = (
        True  # offered in the fine-tuning panel (the ResNet-101 torchvision models are not: too slow)
    )


CATALOG: dict[str, ArchEntry] = {
    e.name: e
    for e in (
        ArchEntry("deeplabv3_mobilenet_v3_large", "DeepLabV3, MobileNetV3-Large: fast; a safe first model on a CPU"),
        ArchEntry("lraspp_mobilenet_v3_large",
                  "LR-ASPP, MobileNetV3-Large: the fastest; learns most from a few images on a CPU"),
        ArchEntry("deeplabv3plus_mobilenet_v3_large",
                  "DeepLabV3+, MobileNetV3-Large: fast, sharper object boundaries than DeepLabV3"),
        ArchEntry("unet_mobilenet_v3_large",
                  "U-Net, MobileNetV3-Large: skip connections keep thin detail; few images on a CPU"),
        ArchEntry("unet_resnet34",
                  "U-Net, ResNet-34: the usual pick for a few dozen images; fine detail, moderate cost"),
        ArchEntry("deeplabv3_resnet50", "DeepLabV3, ResNet-50: accurate on large scenes; wants a GPU"),
        ArchEntry("deeplabv3plus_resnet50", "DeepLabV3+, ResNet-50: accurate with sharp boundaries; wants a GPU"),
        ArchEntry("fcn_resnet50", "FCN, ResNet-50: the classic baseline; blobby boundaries"),
        ArchEntry("segnet_vgg16_bn",
                  "SegNet, VGG16-BN: unpools with pooling indices (the CamVid paper model); heavy, wants a GPU"),
        ArchEntry("deeplabv2_resnet101",
                  "DeepLab v2, ResNet-101, ASPP 6/12/18/24 at stride 8: wide context; very heavy, GPU only"),
        ArchEntry("deeplabv3_resnet101", "DeepLabV3, ResNet-101: the most accurate torchvision model; GPU only",
                  finetune=False),
        ArchEntry("fcn_resnet101", "FCN, ResNet-101: baseline with a deeper backbone; GPU only", finetune=False),
    )
}  # fmt: skip

#: the fine-tuning panel's choices, in menu order
FINETUNE_ARCHS: tuple[str, ...] = tuple(name for name, entry in CATALOG.items() if entry.finetune)

#: the fine-tuning panel's preselected arch for a new model: the best val mIoU after the same CPU time
#: from scratch on real photos (`python -m bench.archs`: 0.236 vs 0.177 for DeepLabV3-MobileNetV3, the
#: runner-up; README, "Architectures"). Inference's default (`models.DEFAULT_ARCH`) is separate.
FINETUNE_DEFAULT_ARCH = "lraspp_mobilenet_v3_large"


def arch_names() -> list[str]:
    return sorted(CATALOG)


def describe(arch: str) -> str:
    """The one-line description, or "" for a name that is not registered."""
    entry = CATALOG.get(arch)
    return entry.description if entry else ""
