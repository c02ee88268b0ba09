"""Predictor: shapes, determinism, resize policy, tiling, TTA, batching, cancel, out-of-memory fallback."""

from __future__ import annotations

import itertools
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.core.errors import CancelledError, SegStudioError
from segstudio.ml.crf import CRFParams
from segstudio.ml.models import build_model
from segstudio.ml.predict import Predictor, resolve_precision
from tests.fakes import RecordingTask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("lraspp_mobilenet_v3_large", 4).eval()


def photo(height: int = 96, width: int = 128) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.chelsea()[:height, :width])


class LocalNet(nn.Module):
    """A purely local model (3 stacked 3x3 convs, receptive radius 3): tiles must reproduce the whole image."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, num_classes, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return OrderedDict(out=self.net(x) * 4.0)


def test_outputs_shapes_dtypes_and_consistency(model):
    predictor = Predictor(model, precision="float32", return_probabilities=True)
    image = photo(90, 120)
    result = predictor.predict(image)
    assert result.labels.shape == (90, 120) and result.labels.dtype == np.uint8
    assert result.confidence.shape == (90, 120) and result.confidence.dtype == np.uint8
    assert result.probabilities.shape == (4, 90, 120) and result.probabilities.dtype == np.float32
    assert np.allclose(result.probabilities.sum(0), 1.0, atol=1e-4)
    assert np.array_equal(result.labels, result.probabilities.argmax(0))
    expected_conf = np.round(255 * result.probabilities.max(0))
    assert np.abs(result.confidence.astype(int) - expected_conf).max() <= 1
    assert result.confidence.min() >= 255 // 4 - 1  # max of 4 probabilities is >= 1/4
    assert np.array_equal(result.raw_labels, result.labels)
    assert {"preprocess", "forward", "postprocess"} <= set(result.timings)


def test_deterministic(model):
    predictor = Predictor(model, precision="float32")
    a, b = predictor.predict(photo()), predictor.predict(photo())
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.confidence, b.confidence)


def test_rejects_bad_input(model):
    predictor = Predictor(model, precision="float32")
    with pytest.raises(SegStudioError, match="HxWx3 uint8"):
        predictor.predict(np.zeros((10, 10), np.uint8))
    with pytest.raises(SegStudioError, match="tile_size"):
        Predictor(model, tile_size=64, tile_overlap=64)
    with pytest.raises(SegStudioError, match="float16 is for GPUs"):
        resolve_precision("float16", torch.device("cpu"))
    assert resolve_precision("auto", torch.device("cuda")) in ("check:bfloat16", "check:float16")
    assert resolve_precision("bfloat16", torch.device("cpu")) == "bfloat16"


def test_resize_policy_predicts_at_reduced_size_and_returns_full_size(model):
    predictor = Predictor(model, precision="float32", max_side=64)
    assert predictor.working_size(96, 128) == (48, 64)
    assert predictor.working_size(30, 40) == (30, 40)
    result = predictor.predict(photo(96, 128))
    assert result.labels.shape == (96, 128)


def test_tiled_equals_untiled_for_a_local_model():
    image = photo(100, 140)
    net = LocalNet().eval()
    whole = Predictor(net, precision="float32", max_side=None, tile_size=512, return_probabilities=True)
    tiled = Predictor(
        net,
        precision="float32",
        max_side=None,
        tile_size=48,
        tile_overlap=16,
        batch_size=3,
        return_probabilities=True,
    )
    task = RecordingTask()
    a, b = whole.predict(image), tiled.predict(image, task)
    assert task.progress[-1][0] == task.progress[-1][1] > 4  # really tiled, progress reported per batch
    diff = np.abs(a.probabilities - b.probabilities)
    # pixels within the receptive radius of an inner tile edge see zero padding; ramps weight them down
    assert diff.mean() < 2e-3
    assert (a.labels == b.labels).mean() > 0.995


def test_tiled_real_model_covers_every_pixel(model):
    predictor = Predictor(model, precision="float32", max_side=None, tile_size=64, tile_overlap=16,
                          return_probabilities=True)  # fmt: skip
    result = predictor.predict(photo(100, 150))
    assert result.labels.shape == (100, 150)
    assert np.allclose(result.probabilities.sum(0), 1.0, atol=1e-4)


def test_flip_tta_averages_with_the_mirrored_prediction():
    image = photo(64, 96)
    net = LocalNet().eval()
    plain = Predictor(net, precision="float32", return_probabilities=True)
    tta = Predictor(net, precision="float32", return_probabilities=True, tta=True)
    p = plain.predict(image).probabilities
    p_flip = plain.predict(np.ascontiguousarray(image[:, ::-1])).probabilities[:, :, ::-1]
    assert not np.allclose(p, p_flip, atol=1e-3)  # the model is not mirror-symmetric, so TTA matters
    assert np.allclose(tta.predict(image).probabilities, (p + p_flip) / 2, atol=1e-4)


def test_predict_many_batches_and_keeps_order(model):
    images = [photo(64, 80), photo(64, 80)[::-1].copy(), photo(70, 80), photo(64, 80)]
    single = Predictor(model, precision="float32", batch_size=1)
    batched = Predictor(model, precision="float32", batch_size=3)
    expected = [single.predict(im).labels for im in images]
    sizes: list[int] = []
    forward = batched._forward_batch
    batched._forward_batch = lambda batch: sizes.append(batch.shape[0]) or forward(batch)  # type: ignore[method-assign]
    got = [r.labels for r in batched.predict_many(images)]
    assert sizes == [2, 1, 1]  # the two same-size images went through in one forward; sizes change flushes
    assert len(got) == 4
    for e, g in zip(expected, got):
        assert g.shape == e.shape and (g == e).mean() > 0.999


def test_crf_in_the_pipeline_keeps_raw_labels():
    predictor = Predictor(LocalNet().eval(), precision="float32", crf=CRFParams(iterations=5))
    result = predictor.predict(photo())
    assert result.raw_labels.shape == result.labels.shape
    assert "crf" in result.timings
    assert not np.array_equal(
        result.raw_labels, result.labels
    )  # the local net's output is noisy; the CRF smooths it


def test_cancel_stops_between_tiles(model):
    predictor = Predictor(
        model, precision="float32", max_side=None, tile_size=48, tile_overlap=8, batch_size=1
    )
    task = RecordingTask(cancel_after=2)
    with pytest.raises(CancelledError):
        predictor.predict(photo(120, 160), task)
    assert len(task.progress) == 2  # stopped right after the cancel, not at the end of the image


def test_out_of_memory_falls_back_to_smaller_tiles_then_cpu(model, monkeypatch, caplog):
    caplog.set_level("INFO", logger="segstudio")
    predictor = Predictor(model, precision="float32", tile_size=1024)
    tried: list[tuple[str, int]] = []
    real = predictor._forward_tiled

    def fake(x, handle, tile_size):
        tried.append((predictor.device.type, tile_size))
        if predictor.device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(x, handle, tile_size)

    real_preprocess = predictor.preprocess

    def preprocess_on_cpu(image):
        predictor.device = torch.device("cpu")
        x = real_preprocess(image)
        predictor.device = torch.device("cuda")  # pretend the model is on a GPU; the fake never touches it
        return x

    monkeypatch.setattr(predictor, "_forward_tiled", fake)
    monkeypatch.setattr(predictor, "preprocess", preprocess_on_cpu)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    task = RecordingTask()
    result = predictor.predict(photo(), task)
    assert result.labels.shape == (96, 128)
    assert tried == [("cuda", 1024), ("cuda", 512), ("cuda", 256), ("cpu", 256)]
    assert any("512 px tiles" in s for s in task.statuses)
    assert any("CPU" in s for s in task.statuses)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name == "segstudio.ml.predict"
    ]
    assert any("512 px tiles" in w for w in warnings) and any("continuing on the CPU" in w for w in warnings)
    assert any(
        r.levelname == "INFO" and "predict one image: done in" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_precision_on_cpu_checks_bf16_agreement_and_speed_first(monkeypatch, native_bf16):
    from segstudio.ml import predict as predict_module

    monkeypatch.setattr(predict_module, "_cpu_has_native_bf16", lambda: native_bf16)
    predictor = Predictor(LocalNet().eval(), precision="auto")
    assert predictor.precision == "float32"
    task = RecordingTask()
    result = predictor.predict(photo(), task)
    assert result.labels.shape == (96, 128)
    if not native_bf16:
        assert predictor.half_check is None and not task.statuses
        return
    check = predictor.half_check
    assert check is not None and check["candidate"] == "bfloat16"
    assert 0.0 < check["agreement"] <= 1.0 and check["speedup"] > 0
    keep = check["agreement"] >= predict_module.HALF_MIN_AGREEMENT and check["speedup"] > 1.0
    assert predictor.precision == ("bfloat16" if keep else "float32")
    assert predictor.channels_last == keep
    assert any(f"{check['agreement']:.2%}" in status for status in task.statuses)
    # the check ran once: a second prediction reports nothing new
    predictor.predict(photo(), task)
    assert len(task.statuses) == 1


class Overflowing(nn.Module):
    """Gives inf under autocast (as float16 did on a ResNet-50 DeepLab on an H100), finite in float32."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.stack([x.mean(1), -x.mean(1)], dim=1)
        if torch.is_autocast_enabled(x.device.type):
            logits = logits + float("inf")
        return OrderedDict(out=logits)


def test_non_finite_half_precision_output_falls_back_to_float32():
    predictor = Predictor(Overflowing(), precision="bfloat16", channels_last=False, return_probabilities=True)
    task = RecordingTask()
    result = predictor.predict(photo(), task)
    assert predictor.precision == "float32"
    assert np.isfinite(result.probabilities).all()
    assert any("overflowed" in status for status in task.statuses)


def test_blend_kept_at_a_coarser_stride_when_over_the_memory_budget():
    """A tiny budget forces the tile blend onto a coarse grid; labels at full size barely change."""
    image = np.ascontiguousarray(photo(150, 200))
    net = LocalNet().eval()
    exact = Predictor(
        net, precision="float32", max_side=None, tile_size=64, tile_overlap=16, return_probabilities=True
    )
    budget_mb = 3 * 150 * 200 * 4 / 9 / (1 << 20)  # a ninth of the full-resolution blend -> stride 3
    coarse = Predictor(net, precision="float32", max_side=None, tile_size=64, tile_overlap=16,
                       return_probabilities=True, accumulator_budget_mb=budget_mb)  # fmt: skip
    assert coarse._accumulator_stride(3, 150, 200) == 3
    probs = coarse.forward(coarse.preprocess(image))
    assert probs.shape == (3, 50, 67)
    assert torch.allclose(probs.sum(0), torch.ones(()), atol=1e-4)
    a, b = exact.predict(image), coarse.predict(image)
    assert b.labels.shape == a.labels.shape
    assert (a.labels == b.labels).mean() > 0.99
    assert np.abs(a.probabilities - b.probabilities).mean() < 0.02


@pytest.mark.parametrize(("height", "width"), [(100, 120), (37, 53), (20, 30), (200, 99)])
def test_band_upsampling_equals_interpolate(height, width):
    from torch.nn import functional as F

    from segstudio.ml.tiling import iter_upsampled_bands

    probs = torch.rand(3, 37, 53)
    bands = list(iter_upsampled_bands(probs, height, width, band_rows=17))
    assert [top for top, _ in bands] == list(range(0, height, 17)) or (height, width) == (37, 53)
    full = torch.cat([band for _, band in bands], dim=1)
    expected = F.interpolate(probs[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(full, expected, atol=1e-5)


def test_tile_grid_covers_the_image_with_the_overlap():
    from segstudio.ml.tiling import tile_grid, tile_weight

    tiles = tile_grid(100, 250, 64, 16)
    covered = np.zeros((100, 250), int)
    for tile in tiles:
        assert tile.height == 64 and tile.width == 64
        covered[tile.slices] += 1
        weight = tile_weight(tile, 100, 250, 16)
        assert weight.min() > 0 and weight.max() == 1
        if tile.top == 0:
            assert bool((weight[0] == weight[20]).all())  # no ramp at the image border
    assert covered.min() >= 1
    lefts = sorted({t.left for t in tiles})
    assert all(b - a <= 64 - 16 for a, b in itertools.pairwise(lefts))


def test_a_loaded_image_is_dropped_before_postprocessing(monkeypatch):
    """predict(loader): the full-resolution image is gone before the full-resolution labels are made
    (bench/memory.py: the 12000x12000 peak), and the result equals predict(image)."""
    import weakref

    predictor = Predictor(
        LocalNet().eval(), precision="float32", crf=CRFParams(iterations=3, scale=2.0, min_pixels=1)
    )
    expected = predictor.predict(photo())
    alive: list[bool] = []
    real_postprocess = Predictor._postprocess

    def spy(self, view, probs, handle, timings):
        alive.append(ref() is not None)
        return real_postprocess(self, view, probs, handle, timings)

    def loader() -> np.ndarray:
        nonlocal ref
        image = photo()
        ref = weakref.ref(image)
        return image

    ref = None
    monkeypatch.setattr(Predictor, "_postprocess", spy)
    result = predictor.predict(loader)
    assert alive == [False]
    assert np.array_equal(result.labels, expected.labels) and np.array_equal(
        result.raw_labels, expected.raw_labels
    )
