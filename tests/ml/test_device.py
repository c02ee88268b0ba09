"""Device choice: CUDA, then Apple MPS, then CPU for "auto"; a requested device that is absent is a clear error."""

from __future__ import annotations

import pytest
import torch

from segstudio.ml import device as device_mod
from segstudio.ml.device import DeviceError, pick_device


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"), (True, False, "cuda")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: mps)
    assert pick_device("auto").type == expected
    assert pick_device(None).type == expected  # type: ignore[arg-type]


def test_explicit_devices_and_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    assert pick_device("CPU") == torch.device("cpu")
    with pytest.raises(DeviceError, match="CUDA was requested"):
        pick_device("cuda")
    with pytest.raises(DeviceError, match="MPS was requested"):
        pick_device("mps")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        pick_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match="cuda:3 does not exist"):
        pick_device("cuda:3")
