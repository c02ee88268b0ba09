"""Why a small model trains slower than the reference loop: a torch.profiler look at steady-state steps.

    python -m bench.gpu_profile --device cuda                              # deeplabv3_mobilenet_v3_large, crop 256
    python -m bench.gpu_profile --device cpu --crop 64 --batch 2 --active 1  # the dry run

Profiles `--active` training steps (after 1 skipped and 2 warm-up steps) of our trainer and of the
torchvision-reference loop of `bench.train`, on the same files and settings, and prints one JSON line
per side with, per step: wall ms, GPU kernel ms (sum of device self time), kernel launches
(`cudaLaunchKernel` & co.), host syncs (`cudaStreamSynchronize`/`cudaDeviceSynchronize` calls and
`aten::item`/`aten::_local_scalar_dense`, the usual culprits: metric updates and logging), and the
top operators by self CPU and by self device time. `launch_bound` says whether the GPU worked for
less than half of the step's wall time: the case where CUDA graphs, `torch.compile` or fewer host
syncs pay off, and where the fix has to start.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.train import make_files, our_rates, reference_rates
from segstudio.ml.precision import canonical_precision
from segstudio.ml.progress import ProgressWriter

LAUNCHES = (
    "cudaLaunchKernel",
    "cudaLaunchKernelExC",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cudaGraphLaunch",
)
SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
SCALAR_READS = ("aten::item", "aten::_local_scalar_dense")
WAIT, WARMUP = 1, 2


class _StepWriter(ProgressWriter):
    """Our trainer's progress writer that also advances the profiler's schedule once per step."""

    def __init__(self, on_step) -> None:
        super().__init__(enabled=False, batch_interval_s=0.0)
        self._on_step = on_step

    def batch(self, force: bool = False, **fields: Any) -> None:
        super().batch(force=force, **fields)
        self._on_step()


def _device_us(event: Any) -> float:
    for name in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def summarise(events: list[Any], active: int, step_ms: list[float]) -> dict[str, Any]:
    """Per-step figures from `prof.key_averages()` over `active` profiled steps."""
    count = {e.key: e.count for e in events}
    gpu_ms = sum(_device_us(e) for e in events) / 1000 / active
    wall_ms = statistics.median(step_ms) if step_ms else None
    top_cpu = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    top_gpu = sorted(events, key=_device_us, reverse=True)[:8]
    return {
        "profiled_steps": active,
        "wall_ms_per_step": round(wall_ms, 2) if wall_ms else None,
        "gpu_kernel_ms_per_step": round(gpu_ms, 2),
        "gpu_share_of_wall": round(gpu_ms / wall_ms, 3) if wall_ms else None,
        "launch_bound": (gpu_ms < 0.5 * wall_ms) if wall_ms and gpu_ms > 0 else None,
        "kernel_launches_per_step": round(sum(count.get(k, 0) for k in LAUNCHES) / active, 1),
        "host_syncs_per_step": round(sum(count.get(k, 0) for k in SYNCS) / active, 1),
        "scalar_reads_per_step": round(sum(count.get(k, 0) for k in SCALAR_READS) / active, 1),
        "top_self_cpu_ms": [[e.key[:60], round(e.self_cpu_time_total / 1000 / active, 2)] for e in top_cpu],
        "top_self_gpu_ms": [
            [e.key[:60], round(_device_us(e) / 1000 / active, 2)] for e in top_gpu if _device_us(e)
        ],
    }


def profile_side(
    side: str, args: argparse.Namespace, device: torch.device, pairs, folder: Path
) -> dict[str, Any]:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    total = WAIT + WARMUP + args.active
    schedule = torch.profiler.schedule(wait=WAIT, warmup=WARMUP, active=args.active, repeat=1)
    torch.manual_seed(0)
    random.seed(0)
    with torch.profiler.profile(activities=activities, schedule=schedule) as prof:
        if side == "ours":
            rates, precision = our_rates(args.arch, pairs, args.crop, args.batch, total + 1, 0, args.workers, device,
                                         folder, writer=_StepWriter(prof.step), precision=args.precision)  # fmt: skip
        else:
            canonical = canonical_precision(args.precision)
            amp = False if canonical in ("float32", "auto") else canonical
            rates = reference_rates(args.arch, pairs, args.crop, args.batch, total + 1, 0, args.workers, device,
                                    amp=amp, on_step=prof.step)  # fmt: skip
            precision = amp or "float32"
    active_ms = [1000 * args.batch / r for r in rates[WAIT + WARMUP : total]]
    out = {"bench": "gpu_profile", "side": side, "arch": args.arch, "crop": args.crop, "batch": args.batch,
           "device": str(device), "precision": precision}  # fmt: skip
    out.update(summarise(list(prof.key_averages()), args.active, active_ms))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="deeplabv3_mobilenet_v3_large")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--active", type=int, default=5, help="profiled steps")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--precision", default="fp32", help="both sides' precision: fp32 or bf16")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    from segstudio.ml.device import pick_device

    device = pick_device(args.device)
    with tempfile.TemporaryDirectory(prefix="gpu_profile_") as tmp:
        folder = Path(tmp)
        pairs = make_files(folder, args.images)
        for side in ("ours", "reference"):
            print(json.dumps(profile_side(side, args, device, pairs, folder)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
