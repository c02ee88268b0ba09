"""GPU busy % while a block of code runs, sampled by `nvidia-smi` in the background (no NVML binding needed).

    with GpuBusy() as busy:
        work()
    busy.summary()  # {"samples": 41, "mean_pct": 63.2, "active_mean_pct": 88.0, ...} or {"error": ...}

`utilization.gpu` is the share of the last sample period in which a kernel ran, so the mean over the
samples is the share of the time the GPU was busy. `active_mean_pct` leaves out the idle samples before
the first busy one and after the last one (process start, model build, file writes at the end), which
is the figure for "GPU busy while predicting"; `mean_pct` is over the whole block.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

QUERY = ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]


class GpuBusy:
    """Context manager: `nvidia-smi -lms <period>` runs for the block's duration."""

    def __init__(self, period_ms: int = 200, index: int = 0) -> None:
        self.period_ms, self.index = period_ms, index
        self.samples: list[float] = []
        self.error: str | None = None
        self.seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix="gpu_busy_", suffix=".csv")[1])

    def __enter__(self) -> GpuBusy:
        self._t0 = time.perf_counter()
        exe = shutil.which("nvidia-smi")
        if exe is None:
            self.error = "nvidia-smi not found (no NVIDIA driver here)"
            return self
        with self._log.open("wb") as out:
            self._proc = subprocess.Popen(
                [exe, *QUERY, f"--id={self.index}", f"-lms={self.period_ms}"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        time.sleep(self.period_ms / 1000)  # first sample before the work starts
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._proc is None:
            return
        time.sleep(self.period_ms / 1000)  # one sample after the work ends
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        text = self._log.read_text(errors="replace")
        self._log.unlink(missing_ok=True)
        for line in text.splitlines():
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                if line.strip() and self.error is None:
                    self.error = f"nvidia-smi: {line.strip()[:200]}"

    def summary(self) -> dict[str, Any]:
        return summarise(self.samples, self.period_ms, self.error)


def summarise(samples: list[float], period_ms: int = 200, error: str | None = None) -> dict[str, Any]:
    """Mean busy % over all samples and over the active window (first to last non-idle sample)."""
    if not samples:
        return {"samples": 0, "error": error or "no samples"}
    busy = [i for i, v in enumerate(samples) if v > 0]
    active = samples[busy[0] : busy[-1] + 1] if busy else []
    out: dict[str, Any] = {
        "samples": len(samples),
        "period_ms": period_ms,
        "mean_pct": round(statistics.fmean(samples), 1),
        "active_mean_pct": round(statistics.fmean(active), 1) if active else 0.0,
        "active_samples": len(active),
        "max_pct": max(samples),
    }
    if error:
        out["warning"] = error
    return out
