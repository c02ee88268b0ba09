"""Which torch device inference runs on: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import os

import torch

from segstudio.core.errors import SegStudioError

__all__ = ["DEVICE_CHOICES", "DeviceError", "device_label", "pick_device"]

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


class DeviceError(SegStudioError):
    """The requested device is not available on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str = "auto") -> torch.device:
    """Resolve "auto" / "cuda" / "cuda:N" / "mps" / "cpu" to a usable device, or say why it cannot."""
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA was requested but no CUDA GPU is usable here (driver or CUDA build of torch missing); "
                "use --device auto or --device cpu"
            )
        device = torch.device(pref)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{pref} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)"
            )
        return device
    if pref == "mps":
        if not _mps_available():
            raise DeviceError(
                "Apple MPS was requested but is not available here; use --device auto or --device cpu"
            )
        return torch.device("mps")
    raise DeviceError(
        f"unknown device {preference!r}; choose one of: {', '.join(DEVICE_CHOICES)} (or cuda:N)"
    )


def device_label(device: torch.device | str | None = None) -> str:
    """A short human label for status bars and logs, e.g. "CUDA 0: NVIDIA H100" or "CPU (8 threads)"."""
    device = pick_device("auto") if device is None else torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA {index}: {torch.cuda.get_device_name(index)}"
    if device.type == "mps":
        return "Apple MPS"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''}, {os.cpu_count()} cores)"
