"""Model registry: every arch builds, returns logits at input resolution, and unknown names are explained."""

from __future__ import annotations

import os
import urllib.error

import pytest
import torch
from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large

from segstudio.ml import hub
from segstudio.ml.models import (
    ModelError,
    arch_info,
    available_archs,
    build_model,
    class_dependent_keys,
)

pytestmark = pytest.mark.usefixtures("offline_downloads", "one_torch_thread")

EXPECTED = {
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "fcn_resnet50",
    "fcn_resnet101",
    "lraspp_mobilenet_v3_large",
    "deeplabv3plus_resnet50",
    "deeplabv3plus_mobilenet_v3_large",
    "unet_resnet34",
    "unet_mobilenet_v3_large",
    "segnet_vgg16_bn",
    "deeplabv2_resnet101",
}


def test_registry_lists_all_archs():
    assert set(available_archs()) == EXPECTED


def test_unknown_arch_lists_choices():
    with pytest.raises(ModelError) as info:
        build_model("unet_resnet9000", 3)
    message = str(info.value)
    assert "unet_resnet9000" in message
    for name in EXPECTED:
        assert name in message


def test_bad_class_count_refused():
    with pytest.raises(ModelError):
        build_model("lraspp_mobilenet_v3_large", 0)


FORWARD_ARCHS = [
    "lraspp_mobilenet_v3_large",
    "deeplabv3_mobilenet_v3_large",
    "deeplabv3plus_mobilenet_v3_large",
    "deeplabv3plus_resnet50",
    "deeplabv3_resnet50",
    "fcn_resnet50",
]


@pytest.mark.parametrize("arch", FORWARD_ARCHS)
def test_forward_gives_logits_at_input_resolution(arch):
    model = build_model(arch, 5).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 72, 88))
    assert out["out"].shape == (2, 5, 72, 88)
    assert torch.isfinite(out["out"]).all()
    if arch_info(arch).has_aux:
        assert out["aux"].shape == (2, 5, 72, 88)
    else:
        assert "aux" not in out


def test_deeplabv3plus_uses_low_level_features():
    """The decoder is fed stride-4 features besides the stride-16 ones (the point of DeepLabV3+)."""
    model = build_model("deeplabv3plus_mobilenet_v3_large", 3).eval()
    with torch.inference_mode():
        feats = model.backbone(torch.rand(1, 3, 64, 64))
    assert feats["low"].shape[-2:] == (16, 16)  # stride 4
    assert feats["out"].shape[-2:] == (4, 4)  # stride 16
    assert model.classifier.project[0].in_channels == feats["low"].shape[1]


def test_resnet101_archs_build_with_requested_classes():
    for arch in ("deeplabv3_resnet101", "fcn_resnet101"):
        model = build_model(arch, 7, aux_loss=False)
        assert model.classifier[-1].out_channels == 7
        assert model.aux_classifier is None


def test_class_dependent_keys_are_the_classifier_rows():
    keys = class_dependent_keys("deeplabv3plus_mobilenet_v3_large")
    assert keys == {"classifier.head.weight", "classifier.head.bias"}
    model = build_model("lraspp_mobilenet_v3_large", 4)
    for key in class_dependent_keys("lraspp_mobilenet_v3_large"):
        assert model.state_dict()[key].shape[0] == 4


def _cache_file(weights) -> str:
    path = hub.cache_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def test_pretrained_backbone_loads_from_torch_home_cache():
    """ImageNet weights come from TORCH_HOME/hub/checkpoints under torchvision's file name (no network)."""
    weights = MobileNet_V3_Large_Weights.IMAGENET1K_V1
    reference = mobilenet_v3_large()
    torch.save(reference.state_dict(), _cache_file(weights))
    for arch in ("lraspp_mobilenet_v3_large", "deeplabv3plus_mobilenet_v3_large"):
        model = build_model(arch, 3, pretrained_backbone=True)
        got = model.backbone.state_dict()["0.0.weight"]
        assert torch.equal(got, reference.state_dict()["features.0.0.weight"])


def test_pretrained_backbone_offline_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(hub.WeightsUnavailableError) as info:
        build_model("lraspp_mobilenet_v3_large", 3, pretrained_backbone=True)
    message = str(info.value)
    assert "--weights FILE" in message
    assert os.path.basename(MobileNet_V3_Large_Weights.IMAGENET1K_V1.url) in message
