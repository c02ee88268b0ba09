"""DeepLabV3+ (Chen et al., ECCV 2018) on torchvision backbones, reusing torchvision's ASPP module.

Encoder: a dilated ResNet / MobileNetV3 backbone at output stride 16 followed by torchvision's ASPP
(rates 6, 12, 18 as in the paper for OS 16). Decoder: the low-level stride-4 features are reduced to
48 channels by a 1x1 conv, concatenated with the 4x upsampled ASPP output, refined by two depthwise
separable 3x3 convs (the paper's choice, ~9x fewer FLOPs than plain convs at stride 4) and classified;
logits are upsampled to the input size. The attribute names (`backbone`, `classifier`,
`aux_classifier`) match torchvision's segmentation models so trainers can treat all archs alike.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v3_large, resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import ASPP

__all__ = ["DeepLabV3Plus", "DeepLabV3PlusHead", "deeplabv3plus_mobilenet_v3_large", "deeplabv3plus_resnet50"]

ASPP_RATES = (6, 12, 18)
LOW_LEVEL_CHANNELS = 48
DECODER_CHANNELS = 256


def _separable(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DeepLabV3PlusHead(nn.Module):
    """ASPP on the high-level features + decoder fusing the low-level features; returns stride-4 logits."""

    def __init__(self, high_channels: int, low_channels: int, num_classes: int) -> None:
        super().__init__()
        self.aspp = ASPP(high_channels, list(ASPP_RATES), DECODER_CHANNELS)
        self.project = nn.Sequential(
            nn.Conv2d(low_channels, LOW_LEVEL_CHANNELS, 1, bias=False),
            nn.BatchNorm2d(LOW_LEVEL_CHANNELS),
            nn.ReLU(inplace=True),
        )
        self.fuse = nn.Sequential(
            _separable(DECODER_CHANNELS + LOW_LEVEL_CHANNELS, DECODER_CHANNELS),
            _separable(DECODER_CHANNELS, DECODER_CHANNELS),
        )
        self.head = nn.Conv2d(DECODER_CHANNELS, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.aspp(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([x, self.project(low)], dim=1)
        return self.head(self.fuse(x))


class DeepLabV3Plus(nn.Module):
    """Backbone returning {"low", "out"} feature maps + `DeepLabV3PlusHead`; forward returns {"out": logits}."""

    def __init__(self, backbone: nn.Module, high_channels: int, low_channels: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = DeepLabV3PlusHead(high_channels, low_channels, num_classes)
        self.aux_classifier = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.backbone(x)
        logits = self.classifier(features["low"], features["out"])
        return OrderedDict(out=F.interpolate(logits, size=size, mode="bilinear", align_corners=False))


def deeplabv3plus_resnet50(num_classes: int) -> DeepLabV3Plus:
    """ResNet-50 with layer4 dilated: output stride 16, the setting the paper's ASPP rates 6/12/18 are for."""
    trunk = resnet50(weights=None, replace_stride_with_dilation=[False, False, True])
    backbone = IntermediateLayerGetter(trunk, return_layers={"layer1": "low", "layer4": "out"})
    return DeepLabV3Plus(backbone, high_channels=2048, low_channels=256, num_classes=num_classes)


def deeplabv3plus_mobilenet_v3_large(num_classes: int) -> DeepLabV3Plus:
    """MobileNetV3-Large (dilated last stage, OS 16); low-level = last stride-4 block (24 channels)."""
    features = mobilenet_v3_large(weights=None, dilated=True).features
    # Blocks flagged `_is_cn` start a new stride; the block before the second one is the last at stride 4.
    stage_starts = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    low_pos, high_pos = stage_starts[1] - 1, len(features) - 1
    backbone = IntermediateLayerGetter(features, return_layers={str(low_pos): "low", str(high_pos): "out"})
    return DeepLabV3Plus(
        backbone,
        high_channels=features[high_pos].out_channels,
        low_channels=features[low_pos].out_channels,
        num_classes=num_classes,
    )
