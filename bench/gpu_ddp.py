"""torchrun on the GPU(s): a short fine-tune under `torchrun --nproc_per_node N` (NCCL on CUDA) against a
plain run of the same manifest, and whether both write the same checkpoint layout.

    python -m bench.gpu_ddp --device cuda --nproc 1        # the issue's one-GPU check
    python -m bench.gpu_ddp --device cuda --nproc auto     # every GPU of the machine
    python -m bench.gpu_ddp --device cpu --size 48         # the dry run (gloo)

Both runs go through `segstudio train --manifest FILE` (the plain one in this process, the torchrun one
as `python -m torch.distributed.run --standalone --nproc_per_node N -m segstudio train ...`) on
generated shapes (`ml.synthetic`), scratch weights. The torchrun run gets `NCCL_DEBUG=INFO`, so its
log says whether NCCL really started: with one process the trainer needs no process group
(`DistContext.enabled` is world_size > 1), which `process_group_expected` records next to the count of
NCCL log lines. Layout = the run folder's files, and per checkpoint its top-level keys, its state
dict's names, shapes and dtypes, and its provenance keys. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ARCH = "lraspp_mobilenet_v3_large"


def layout(run_dir: Path) -> dict[str, Any]:
    """What a consumer of the run folder depends on (not the weights' values)."""
    files = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    out: dict[str, Any] = {"files": files, "checkpoints": {}}
    for name in files:
        if not name.endswith(".pt"):
            continue
        ckpt = torch.load(run_dir / name, map_location="cpu", weights_only=True)
        entry: dict[str, Any] = {"keys": sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__}
        if isinstance(ckpt, dict):
            for key, value in ckpt.items():
                if isinstance(value, dict) and value and all(torch.is_tensor(v) for v in value.values()):
                    entry[f"{key}:tensors"] = sorted(
                        f"{k}:{tuple(v.shape)}:{str(v.dtype).removeprefix('torch.')}"
                        for k, v in value.items()
                    )
                elif isinstance(value, dict):
                    entry[f"{key}:keys"] = sorted(value)
        out["checkpoints"][name] = entry
    return out


def brief(found: dict[str, Any]) -> dict[str, Any]:
    """The layout for the report: tensor lists as a count and a digest (they run to hundreds of names)."""
    out: dict[str, Any] = {"files": found["files"], "checkpoints": {}}
    for name, entry in found["checkpoints"].items():
        out["checkpoints"][name] = {
            key: (
                {"count": len(value), "sha1": hashlib.sha1("\n".join(value).encode()).hexdigest()[:12]}
                if key.endswith(":tensors")
                else value
            )
            for key, value in entry.items()
        }
    return out


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two layouts differ (at most a few lines, for the report)."""
    if isinstance(a, dict) and isinstance(b, dict):
        diffs = [f"{path}/{k}: only in {'plain' if k in a else 'torchrun'}" for k in sorted(set(a) ^ set(b))]
        for key in sorted(set(a) & set(b)):
            diffs += differences(a[key], b[key], f"{path}/{key}")
        return diffs
    if isinstance(a, list) and isinstance(b, list) and a != b:
        return [
            f"{path}: plain-only {sorted(set(a) - set(b))[:5]}, torchrun-only {sorted(set(b) - set(a))[:5]}"
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--nproc", default="1", help="processes (GPUs) for torchrun, or 'auto'")
    parser.add_argument("--size", type=int, default=128, help="generated image side")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240, help="seconds for the torchrun run")
    args = parser.parse_args(argv)

    from segstudio.cli import main as cli_main
    from segstudio.ml.device import pick_device
    from segstudio.ml.distributed import backend_for
    from segstudio.ml.manifest import BaseSpec
    from segstudio.ml.synthetic import write_shapes_manifest

    device = pick_device(args.device)
    nproc = (
        (torch.cuda.device_count() if device.type == "cuda" else 2)
        if args.nproc == "auto"
        else int(args.nproc)
    )
    crop = max(32, args.size * 3 // 4)
    settings = {"batch": 4, "crop": crop, "workers": 0, "min_iters_per_epoch": 4, "device": device.type,
                "epochs": args.epochs, "patience": 0, "lr": 0.02}  # fmt: skip
    record: dict[str, Any] = {"bench": "gpu_ddp", "device": str(device), "nproc": nproc, "arch": ARCH}
    record["backend_for_device"] = backend_for(
        torch.device(device.type, 0) if device.type == "cuda" else device
    )
    record["nccl_available"] = bool(
        torch.distributed.is_available() and torch.distributed.is_nccl_available()
    )
    record["process_group_expected"] = nproc > 1
    with tempfile.TemporaryDirectory(prefix="gpu_ddp_") as tmp:
        root = Path(tmp)
        manifest = write_shapes_manifest(root / "data", train=args.images, val=2, size=args.size, arch=ARCH,
                                         base=BaseSpec("scratch"), version="v1", settings=settings)  # fmt: skip
        paths = {}
        for name in ("plain", "torchrun"):
            manifest.output_dir = str(root / f"run_{name}")
            paths[name] = manifest.save(root / f"{name}.json")

        out = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out):
            status = cli_main(["train", "--manifest", str(paths["plain"]), "--json"])
        record["plain"] = {"exit": status, "seconds": round(time.perf_counter() - t0, 2)}
        plain_events = _events(out.getvalue())

        env = {**os.environ, "NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(key, None)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                   "-m", "segstudio", "train", "--manifest", str(paths["torchrun"]), "--json"]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout, cwd=tmp)
        record["torchrun"] = {"exit": proc.returncode, "seconds": round(time.perf_counter() - t0, 2)}
        log = proc.stdout + proc.stderr
        nccl_lines = [line for line in log.splitlines() if "NCCL INFO" in line]
        record["torchrun"]["nccl_log_lines"] = len(nccl_lines)
        version = next((line for line in nccl_lines if "NCCL version" in line), None)
        record["torchrun"]["nccl_version_line"] = (
            version.split("NCCL INFO", 1)[1].strip() if version else None
        )
        if proc.returncode != 0:
            record["torchrun"]["stderr_tail"] = proc.stderr[-1500:]
        run_events = _events(proc.stdout)
        for name, events in (("plain", plain_events), ("torchrun", run_events)):
            start = next((e for e in events if e.get("event") == "start"), {})
            done = next((e for e in events if e.get("event") == "done"), {})
            record[name].update(world_size=start.get("world_size"), precision=start.get("precision"),
                                device=start.get("device"), done=bool(done))  # fmt: skip
        ok = record["plain"]["exit"] == 0 and proc.returncode == 0
        if ok:
            a, b = layout(root / "run_plain"), layout(root / "run_torchrun")
            diffs = differences(a, b)
            record.update(layout_equal=not diffs, layout_differences=diffs[:10], layout=brief(a))
        else:
            record["layout_equal"] = None
    print(json.dumps(record), flush=True)
    return 0 if ok and record["layout_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
