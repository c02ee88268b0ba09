"""The seed papers' archs (U-Net, SegNet, DeepLab v2): the registry contract, what makes each one that
architecture, gradients, ImageNet backbone keys, checkpoint round-trip, and learning on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.models import mobilenet_v3_large, resnet34, resnet101, vgg16_bn

from segstudio.core.schemes import LabelScheme
from segstudio.ml import archs_seed, catalog, hub
from segstudio.ml.models import ARCHS, arch_info, build_model, class_dependent_keys
from segstudio.ml.spec import ModelSpec
from segstudio.ml.weights import load_checkpoint, load_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("offline_downloads", "one_torch_thread")

SEED_ARCHS = ["unet_resnet34", "unet_mobilenet_v3_large", "segnet_vgg16_bn", "deeplabv2_resnet101"]
ODD_SIZES = [(37, 53), (64, 48), (33, 91)]


def _scheme(n: int) -> LabelScheme:
    return LabelScheme.from_dict(
        {"name": "t", "classes": [{"name": f"c{i}", "color": [i, 2 * i, 3 * i]} for i in range(n)]}
    )


@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_registered_with_a_description_and_in_the_finetune_panel(arch):
    info = arch_info(arch)
    assert info.description == catalog.describe(arch) and len(info.description) > 20
    assert arch in catalog.FINETUNE_ARCHS
    assert not info.has_aux and info.published_weights is None


def test_catalog_and_registry_agree():
    assert set(catalog.arch_names()) == set(ARCHS)
    assert catalog.FINETUNE_DEFAULT_ARCH in catalog.FINETUNE_ARCHS
    assert catalog.describe("no_such_arch") == ""


@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_logits_at_input_resolution_for_odd_sizes(arch):
    torch.manual_seed(0)
    model = build_model(arch, 5).eval()
    for h, w in ODD_SIZES:
        with torch.inference_mode():
            out = model(torch.rand(2, 3, h, w))
        assert list(out) == ["out"]
        assert out["out"].shape == (2, 5, h, w)
        assert torch.isfinite(out["out"]).all()


@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_every_parameter_gets_a_gradient(arch):
    torch.manual_seed(0)
    model = build_model(arch, 3).train()
    target = torch.randint(0, 3, (2, 41, 57))
    target[:, :5] = 255  # void is ignored, as in training
    loss = F.cross_entropy(model(torch.rand(2, 3, 41, 57))["out"], target, ignore_index=255)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    assert model.classifier.state_dict()  # decoder/head exists apart from the backbone
    assert sum(float(p.grad.abs().sum()) for p in model.backbone.parameters()) > 0  # the encoder learns too


@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_class_rows_are_only_the_classifier(arch):
    keys = class_dependent_keys(arch)
    assert keys and all(k.startswith("classifier.") for k in keys)
    model = build_model(arch, 4)
    assert all(model.state_dict()[k].shape[0] == 4 for k in keys)


def test_unet_skips_come_from_every_stride():
    for arch in ("unet_resnet34", "unet_mobilenet_v3_large"):
        model = build_model(arch, 3).eval()
        with torch.inference_mode():
            feats = list(model.backbone(torch.rand(1, 3, 64, 96)).values())
        assert [f.shape[-2:] for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]
        # each decoder block but the last concatenates the encoder map of its stride
        blocks = model.classifier.blocks
        widths = [f.shape[1] for f in feats[:-1]][::-1] + [0]
        for block, skip in zip(blocks, widths):
            assert block.convs[0].in_channels - skip > 0


def test_segnet_unpools_with_the_encoders_pooling_indices(monkeypatch):
    """Five unpoolings, each with the argmax indices of the matching encoder pool (not learnt upsampling)."""
    model = build_model("segnet_vgg16_bn", 3).eval()
    assert not any(isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Upsample)) for m in model.modules())
    x = torch.rand(1, 3, 45, 70)
    with torch.inference_mode():
        _, pools = model.backbone(x)
    used = []
    real_unpool = F.max_unpool2d

    def spy(inp, indices, *args, **kwargs):
        used.append(indices)
        return real_unpool(inp, indices, *args, **kwargs)

    monkeypatch.setattr(archs_seed.F, "max_unpool2d", spy)
    with torch.inference_mode():
        model(x)
    assert len(used) == 5
    for got, (expected, _) in zip(used, reversed(pools)):
        assert torch.equal(got, expected)


def test_deeplabv2_is_output_stride_8_with_summed_aspp_branches():
    model = build_model("deeplabv2_resnet101", 4).eval()
    with torch.inference_mode():
        feats = model.backbone(torch.rand(1, 3, 64, 80))["out"]
        assert feats.shape[-2:] == (8, 10)
        branches = model.classifier.branches
        assert [b.dilation[0] for b in branches] == [6, 12, 18, 24]
        summed = sum(b(feats) for b in branches) * model.classifier.scale
        assert torch.allclose(model.classifier(feats), summed, atol=1e-5)


def _tv_backbone(arch):
    with torch.device("meta"):
        ref = {
            "unet_resnet34": resnet34,
            "unet_mobilenet_v3_large": mobilenet_v3_large,
            "segnet_vgg16_bn": vgg16_bn,
            "deeplabv2_resnet101": resnet101,
        }[arch]()
        model = build_model(arch, 3)
    return ref.state_dict(), model.backbone.state_dict()


@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_imagenet_weights_cover_the_backbone_by_key_and_shape(arch):
    """The keys `load_pretrained_backbone` maps (torchvision's, `features.` stripped) fill every backbone tensor."""
    ref, target = _tv_backbone(arch)
    mapped = {k.removeprefix("features."): v for k, v in ref.items()}
    for key, value in target.items():
        assert key in mapped, key
        assert mapped[key].shape == value.shape, key


def test_pretrained_backbone_loads_from_the_torch_home_cache():
    reference = mobilenet_v3_large()
    path = hub.cache_path(arch_info("unet_mobilenet_v3_large").backbone_weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(reference.state_dict(), path)
    model = build_model("unet_mobilenet_v3_large", 3, pretrained_backbone=True)
    assert torch.equal(
        model.backbone.state_dict()["0.0.weight"], reference.state_dict()["features.0.0.weight"]
    )


@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_checkpoint_round_trip_gives_the_same_outputs(arch, tmp_path):
    torch.manual_seed(1)
    scheme = _scheme(3)
    model = build_model(arch, 3).train()
    with torch.no_grad():
        model(torch.rand(2, 3, 40, 56))  # BatchNorm running stats move off their defaults
    model.eval()
    x = torch.rand(1, 3, 39, 61)
    with torch.inference_mode():
        expected = model(x)["out"]
    path = save_checkpoint(tmp_path / f"{arch}.pt", model, arch, scheme)
    assert load_checkpoint(path).arch == arch  # loads with weights_only=True
    loaded = load_model(ModelSpec(weights="file", path=str(path)), scheme, "cpu")
    assert loaded.arch == arch
    with torch.inference_mode():
        assert torch.allclose(loaded.model(x)["out"], expected, atol=1e-5)


def _camvid_batch(root, count: int, size: tuple[int, int]):
    from PIL import Image

    images = sorted((root / "images").glob("*.png"))[:count]
    xs, ys = [], []
    for path in images:
        image = Image.open(path).convert("RGB").resize(size[::-1], Image.BILINEAR)
        mask = Image.open(root / "masks" / path.name).resize(size[::-1], Image.NEAREST)
        xs.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
        ys.append(torch.from_numpy(np.asarray(mask).astype(np.int64)))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return (torch.stack(xs) - mean) / std, torch.stack(ys)


@pytest.mark.slow
@pytest.mark.parametrize("arch", SEED_ARCHS)
def test_a_few_sgd_steps_lower_the_loss_on_camvid_photos(arch, shared_testdata):
    """Each arch fits two real street photos (11 CamVid classes) a little better after a few steps."""
    x, y = _camvid_batch(shared_testdata / "camvid_sample", 2, (72, 96))
    torch.manual_seed(0)
    model = build_model(arch, 11).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(x)["out"], y, ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-2:]) < 0.8 * losses[0], losses


@pytest.mark.slow
def test_trainer_fits_a_unet_on_the_camvid_sample(shared_testdata, tmp_path):
    """The real trainer, the bench's split: the loss falls and the best checkpoint is a loadable U-Net."""
    from bench.archs import camvid_manifest
    from segstudio.ml.progress import ProgressWriter
    from segstudio.ml.train import TrainConfig, train

    manifest = camvid_manifest(shared_testdata / "camvid_sample", tmp_path / "run", "unet_mobilenet_v3_large")
    config = TrainConfig(
        epochs=3,
        batch=4,
        crop=96,
        max_side=160,
        lr=0.05,
        workers=0,
        min_iters_per_epoch=6,
        patience=0,
        device="cpu",
        seed=0,
    )
    writer = ProgressWriter(enabled=False)
    result = train(manifest, config, progress=writer)
    losses = [e["loss"] for e in writer.events if e["event"] == "epoch"]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    assert result.best_miou is not None and result.best_miou > result.baseline_miou
    assert load_checkpoint(result.checkpoint).arch == "unet_mobilenet_v3_large"
