"""torchrun readiness: env parsing, backend choice, and a real 2-process gloo run on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from segstudio.ml.distributed import DistContext, DistributedError, backend_for, launched_by_torchrun
from segstudio.ml.manifest import BaseSpec
from segstudio.ml.synthetic import write_shapes_manifest
from segstudio.ml.train import build_start_model, state_hash
from segstudio.ml.weights import load_checkpoint

ARCH = "lraspp_mobilenet_v3_large"


def test_context_from_env():
    assert DistContext.from_env({}) == DistContext()
    assert not DistContext().enabled and DistContext().is_main
    ctx = DistContext.from_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.enabled, ctx.is_main) == (1, 4, 1, True, False)
    assert ctx.device_for(torch.device("cuda")) == torch.device("cuda", 1)
    assert ctx.device_for(torch.device("cpu")) == torch.device("cpu")
    assert launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "1"}) and not launched_by_torchrun({"RANK": "0"})
    with pytest.raises(DistributedError, match="outside"):
        DistContext.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(DistributedError, match="bad torchrun environment"):
        DistContext.from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_backend_is_chosen_from_the_device():
    assert backend_for(torch.device("cpu")) == "gloo"
    assert backend_for(torch.device("mps")) == "gloo"
    assert backend_for(torch.device("cuda", 0)) == ("nccl" if dist.is_nccl_available() else "gloo")


def test_single_process_helpers_are_no_ops():
    ctx = DistContext()
    ctx.init(torch.device("cpu"))
    t = torch.ones(3)
    assert ctx.all_reduce_sum(t) is t and t.tolist() == [1, 1, 1]
    assert ctx.broadcast_object({"a": 1}) == {"a": 1}
    assert ctx.any_true(True, torch.device("cpu")) is True
    assert not dist.is_initialized()


@pytest.mark.slow
def test_torchrun_two_processes_gloo_identical_weights_one_checkpoint(tmp_path):
    settings = {
        "batch": 2,
        "crop": 48,
        "workers": 0,
        "min_iters_per_epoch": 3,
        "device": "cpu",
        "epochs": 2,
        "lr": 0.02,
        "patience": 0,
    }
    manifest = write_shapes_manifest(
        tmp_path,
        train=8,
        val=3,
        size=48,
        arch=ARCH,
        base=BaseSpec("scratch"),
        version="v1",
        settings=settings,
    )
    path = manifest.save(tmp_path / "manifest.json")
    hashes = tmp_path / "hashes"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(Path(__file__).with_name("ddp_train_hash.py")),
            str(path),
            str(hashes),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    # rank 0 alone speaks: one start, one done
    assert [e["event"] for e in events].count("start") == 1
    assert [e["event"] for e in events].count("done") == 1
    start = next(e for e in events if e["event"] == "start")
    assert start["world_size"] == 2
    # both ranks end with the same weights (gradients all-reduced, BN statistics broadcast)
    rank_hashes = sorted(hashes.glob("rank*.sha256"))
    assert [p.name for p in rank_hashes] == ["rank0.sha256", "rank1.sha256"]
    h0, h1 = (p.read_text().strip() for p in rank_hashes)
    assert h0 == h1
    fresh = build_start_model(BaseSpec("scratch"), ARCH, manifest.label_scheme(), seed=0)[0]
    assert h0 != state_hash(fresh)  # and they did train
    # exactly one checkpoint, written by rank 0, recording the distributed run
    run_dir = tmp_path / "run"
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == ["best.pt"]
    ckpt = load_checkpoint(run_dir / "best.pt")
    assert ckpt.provenance["world_size"] == 2 and ckpt.version == "v1"
    # val metrics were summed over both ranks' shards: every val pixel counted once
    val = [e for e in events if e["event"] == "val"]
    assert val and all(e["labelled_pixels"] == 3 * 48 * 48 for e in val)
