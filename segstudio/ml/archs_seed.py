"""The architectures of the papers SegStudio builds on, written here on torchvision backbones.

- U-Net (Ronneberger et al., MICCAI 2015): an encoder-decoder whose decoder upsamples 2x per stage,
  concatenates the encoder features of the same stride (skip connections) and refines with two 3x3
  conv+BN+ReLU. The paper's own encoder is replaced by an ImageNet backbone (ResNet-34 or
  MobileNetV3-Large), the usual choice when a dataset has only a few dozen images.
- SegNet (Badrinarayanan et al., TPAMI 2017): a VGG16-BN encoder whose five max-pooling layers keep
  their argmax indices; the mirrored decoder *unpools* with those indices (sparse maps that put each
  value back where its maximum was, so boundaries stay in place without learning to upsample) and
  densifies with conv+BN+ReLU.
- DeepLab v2 (Chen et al., TPAMI 2018): ResNet-101 dilated to output stride 8 and ASPP: four parallel
  3x3 classifiers with dilation rates 6, 12, 18 and 24 whose logits are *summed* (not concatenated
  and fused as in v3); the result is upsampled bilinearly to the input size. (The head's weights are
  reparametrised so it trains at the other archs' learning rate; see `DEEPLABV2_HEAD_SCALE`.)

Every model exposes `backbone` (torchvision module names, so `models.load_pretrained_backbone` copies
ImageNet weights by key) and `classifier`, has `aux_classifier = None`, and returns {"out": logits}
at the input resolution for any input size (decoder stages resize to the skip's size, so odd sizes
work).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v3_large, resnet34, resnet101, vgg16_bn
from torchvision.models._utils import IntermediateLayerGetter

__all__ = [
    "DEEPLABV2_RATES",
    "DeepLabV2",
    "SegNet",
    "UNet",
    "deeplabv2_resnet101",
    "segnet_vgg16_bn",
    "unet_mobilenet_v3_large",
    "unet_resnet34",
]

#: decoder widths from the deepest stage to full resolution (halving, as in the U-Net paper)
UNET_DECODER_CHANNELS = (256, 128, 64, 32, 16)
#: the paper's ASPP-L rates for output stride 8
DEEPLABV2_RATES = (6, 12, 18, 24)
#: DeepLab v2's head is four un-normalised 3x3 convs over 2048 channels, summed: at the learning rate
#: the other archs train with (SGD 0.01), one step moves the logits by tens and training diverges.
#: The branches' weights are stored divided by this factor and their sum multiplied by it: the same
#: function and the same gradients for the backbone, but the head learns at factor**2 = 1/100 of the
#: rate (the paper trains at 2.5e-4 for the same reason).
DEEPLABV2_HEAD_SCALE = 0.1


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def _resize(x: torch.Tensor, size: torch.Size | Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------------ U-Net


class UNetBlock(nn.Module):
    """Upsample to the skip's size, concatenate it, two 3x3 conv+BN+ReLU (the paper's decoder stage)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *_conv_bn_relu(in_channels + skip_channels, out_channels),
            *_conv_bn_relu(out_channels, out_channels),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: torch.Size) -> torch.Tensor:
        x = _resize(x, size)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNetDecoder(nn.Module):
    """One block per encoder stage (deepest first), then a last block at full resolution with no skip."""

    def __init__(
        self,
        encoder_channels: Sequence[int],
        num_classes: int,
        decoder_channels: Sequence[int] = UNET_DECODER_CHANNELS,
    ) -> None:
        super().__init__()
        *skips, deepest = encoder_channels  # shallow -> deep, strides 2, 4, 8, 16 then 32
        skip_channels = [*reversed(skips), 0]
        if len(skip_channels) != len(decoder_channels):
            raise ValueError(
                f"{len(encoder_channels)} encoder stages need {len(encoder_channels)} decoder widths"
            )
        widths = [deepest, *decoder_channels]
        self.blocks = nn.ModuleList(
            UNetBlock(widths[i], skip_channels[i], widths[i + 1]) for i in range(len(decoder_channels))
        )
        self.head = nn.Conv2d(decoder_channels[-1], num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor], size: torch.Size) -> torch.Tensor:
        *skips, x = features
        for block, skip in zip(self.blocks, [*reversed(skips), None]):
            x = block(x, skip, skip.shape[-2:] if skip is not None else size)
        return self.head(x)


class UNet(nn.Module):
    """A backbone returning five feature maps (strides 2..32, ordered) + `UNetDecoder`."""

    def __init__(self, backbone: nn.Module, encoder_channels: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = UNetDecoder(encoder_channels, num_classes)
        self.aux_classifier = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = list(self.backbone(x).values())
        return OrderedDict(out=self.classifier(features, x.shape[-2:]))


def unet_resnet34(num_classes: int) -> UNet:
    """Skips from ResNet-34's stem (stride 2, after ReLU) and layer1..layer3; layer4 (stride 32) is the bottom."""
    trunk = resnet34(weights=None)
    layers = {"relu": "s2", "layer1": "s4", "layer2": "s8", "layer3": "s16", "layer4": "s32"}
    backbone = IntermediateLayerGetter(trunk, return_layers=layers)
    return UNet(backbone, (64, 64, 128, 256, 512), num_classes)


def unet_mobilenet_v3_large(num_classes: int) -> UNet:
    """Skips from the last MobileNetV3-Large block at each stride 2, 4, 8, 16; the final 960-channel conv is the bottom."""
    features = mobilenet_v3_large(weights=None).features
    # blocks flagged `_is_cn` halve the resolution, so the block before each is the last one at its stride
    starts = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    positions = [s - 1 for s in starts] + [len(features) - 1]
    backbone = IntermediateLayerGetter(
        features, return_layers={str(p): f"s{2 ** (k + 1)}" for k, p in enumerate(positions)}
    )
    return UNet(backbone, [features[p].out_channels for p in positions], num_classes)


# ----------------------------------------------------------------------------------------- SegNet


class SegNetEncoder(nn.Sequential):
    """VGG16-BN's `features` layers (same keys, so ImageNet weights load by key), run so that each
    max-pool keeps its argmax indices and its input size for the decoder's unpooling."""

    def __init__(self) -> None:
        super().__init__(*vgg16_bn(weights=None).features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Size]]]:  # type: ignore[override]
        pools: list[tuple[torch.Tensor, torch.Size]] = []
        for layer in self:
            if isinstance(layer, nn.MaxPool2d):
                size = x.shape[-2:]
                x, indices = F.max_pool2d(x, layer.kernel_size, layer.stride, return_indices=True)
                pools.append((indices, size))
            else:
                x = layer(x)
        return x, pools


#: decoder stages, deepest first: the mirror of VGG16's (64,64 | 128,128 | 256x3 | 512x3 | 512x3)
SEGNET_DECODER = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64,))


class SegNetDecoder(nn.Module):
    """Per stage: max-unpool with the encoder's indices, then conv+BN+ReLU; a 3x3 conv classifies."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        stages, width = [], 512
        for widths in SEGNET_DECODER:
            layers: list[nn.Module] = []
            for out in widths:
                layers += _conv_bn_relu(width, out)
                width = out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(width, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor, pools: list[tuple[torch.Tensor, torch.Size]]) -> torch.Tensor:
        for stage, (indices, size) in zip(self.stages, reversed(pools)):
            x = stage(F.max_unpool2d(x, indices, 2, 2, output_size=size))
        return self.head(x)


class SegNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = SegNetEncoder()
        self.classifier = SegNetDecoder(num_classes)
        self.aux_classifier = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        bottom, pools = self.backbone(x)
        return OrderedDict(out=self.classifier(bottom, pools))


def segnet_vgg16_bn(num_classes: int) -> SegNet:
    return SegNet(num_classes)


# ------------------------------------------------------------------------------------- DeepLab v2


class ASPPv2(nn.Module):
    """DeepLab v2's ASPP: parallel dilated 3x3 classifiers on the same features, logits summed
    (scaled by `DEEPLABV2_HEAD_SCALE` so the head trains at the common learning rate)."""

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int] = DEEPLABV2_RATES) -> None:
        super().__init__()
        self.scale = DEEPLABV2_HEAD_SCALE
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r) for r in rates
        )
        for (
            branch
        ) in self.branches:  # the paper's init, N(0, 0.01) classifiers and zero bias, in stored units
            nn.init.normal_(branch.weight, std=0.01 / self.scale)
            nn.init.zeros_(branch.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out * self.scale


class DeepLabV2(nn.Module):
    def __init__(self, backbone: nn.Module, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = ASPPv2(in_channels, num_classes)
        self.aux_classifier = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.classifier(self.backbone(x)["out"])
        return OrderedDict(out=_resize(logits, x.shape[-2:]))


def deeplabv2_resnet101(num_classes: int) -> DeepLabV2:
    """ResNet-101 with layer3 and layer4 dilated (2 and 4) instead of strided: output stride 8."""
    trunk = resnet101(weights=None, replace_stride_with_dilation=[False, True, True])
    backbone = IntermediateLayerGetter(trunk, return_layers={"layer4": "out"})
    return DeepLabV2(backbone, 2048, num_classes)
