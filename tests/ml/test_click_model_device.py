"""The click model on a GPU: "same code, AMP" (issue #21). No GPU here, so the device choice is
monkeypatched: the training loop and the ``learned`` engine ask `ml.device.pick_device`, and on CUDA
they run under the segmentation trainer's autocast (`train_loop.autocast_for`); the autocast path is
exercised on the CPU with bfloat16, which torch supports there."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segstudio.ml import click_model_train  # noqa: E402
from segstudio.ml.click_model import ClickNet, save_click_model  # noqa: E402
from segstudio.ml.click_model_train import (  # noqa: E402
    ClickTrainConfig,
    ObjectBank,
    amp_precision,
    train_click_model,
)


@pytest.fixture(autouse=True)
def _fresh_engine_state():
    from segstudio.core.interactive.engines import ENGINES
    from segstudio.ml import click_engine

    click_engine._models.clear()  # predictors are cached per file: each test builds its own
    yield
    click_engine._models.clear()
    ENGINES.pop("learned", None)


def _bank() -> ObjectBank:
    image = np.full((60, 80, 3), 90, np.uint8)
    mask = np.full((60, 80), 255, np.uint8)
    image[15:45, 20:60] = (220, 40, 40)
    mask[15:45, 20:60] = 1
    return ObjectBank([(image, mask)], min_object=0.01)


def _autocast_seen(monkeypatch) -> list[bool]:
    """Records, for every ClickNet pass (`delta`: the network; `forward` adds the prior term to it),
    whether CPU autocast (bfloat16) was on."""
    seen: list[bool] = []
    real = ClickNet.delta

    def delta(self, x):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return real(self, x)

    monkeypatch.setattr(ClickNet, "delta", delta)
    return seen


def _picked(monkeypatch) -> list[str]:
    """The preferences `pick_device` was asked for; it answers the CPU (no GPU here)."""
    from segstudio.ml import device

    asked: list[str] = []

    def pick(preference: str = "auto") -> torch.device:
        asked.append(preference)
        return torch.device("cpu")

    monkeypatch.setattr(device, "pick_device", pick)
    return asked


def test_amp_precision_follows_the_trainer_on_cuda_and_is_float32_elsewhere(monkeypatch):
    assert amp_precision(torch.device("cpu")) == "float32"  # even on AMX CPUs: AMP only where it pays
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_precision(torch.device("cuda")) == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_precision(torch.device("cuda")) == "float16"


def test_training_asks_the_device_picker_and_runs_under_autocast(monkeypatch, tmp_path, one_torch_thread):
    asked = _picked(monkeypatch)
    seen = _autocast_seen(monkeypatch)
    config = ClickTrainConfig(steps=3, batch=2, max_iters=1, width=4, device="cuda:0")
    _, plain = train_click_model(_bank(), None, config)
    assert asked == ["cuda:0"] and plain.steps == 3 and seen and not any(seen)  # CPU answer: float32
    seen.clear()
    monkeypatch.setattr(click_model_train, "amp_precision", lambda device: "bfloat16")
    model, result = train_click_model(_bank(), tmp_path / "click_model.pt", config)
    assert seen and all(seen)  # every forward pass (simulated rounds and the trained one) under autocast
    assert result.steps == 3 and all(np.isfinite(result.losses))
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())


def test_learned_engine_asks_the_device_picker_and_runs_under_autocast(
    monkeypatch, tmp_path, one_torch_thread
):
    from segstudio.core.interactive import ClickSession, create_engine
    from segstudio.ml.click_engine import use_click_model

    asked = _picked(monkeypatch)
    seen = _autocast_seen(monkeypatch)
    monkeypatch.setattr(click_model_train, "amp_precision", lambda device: "bfloat16")
    # without segmentation evidence (no best.pt needed: this test is about the device)
    info = {"seg_evidence": False, "proposal": False}
    use_click_model(save_click_model(tmp_path / "click_model.pt", ClickNet(width=4), info))
    image, _ = _bank().frames[0]
    engine = create_engine("learned")
    engine.prepare(image)
    assert asked == ["auto"]  # the GUI's engine follows the machine: CUDA, then MPS, then CPU
    region = ClickSession(engine, 1).click(40.0, 30.0)
    assert seen == [True] and region.dtype == bool and region.shape == image.shape[:2] and region[30, 40]
