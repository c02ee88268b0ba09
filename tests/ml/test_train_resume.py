"""`segstudio train --manifest` as a child process: killed mid-run and resumed; SIGTERM keeps the best checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segstudio.ml.manifest import BaseSpec
from segstudio.ml.synthetic import write_shapes_manifest
from segstudio.ml.weights import load_checkpoint

ARCH = "lraspp_mobilenet_v3_large"
SETTINGS = {
    "batch": 4,
    "crop": 48,
    "workers": 0,
    "min_iters_per_epoch": 4,
    "device": "cpu",
    "lr": 0.02,
    "patience": 0,
}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _start(manifest_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segstudio", "train", "--manifest", str(manifest_path), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _read_until(process: subprocess.Popen, predicate, timeout: float = 240) -> list[dict]:
    """Events from the child's stdout up to (and including) the first one `predicate` accepts."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            seen.append(json.loads(line))
            if predicate(seen[-1]):
                return seen
    raise AssertionError(
        f"the trainer never reported what we waited for; saw {[e['event'] for e in seen]}; "
        f"stderr: {process.stderr.read() if process.poll() is not None else ''}"
    )


@pytest.fixture
def manifest_path(tmp_path) -> Path:
    manifest = write_shapes_manifest(
        tmp_path,
        train=8,
        val=2,
        size=48,
        arch=ARCH,
        base=BaseSpec("scratch"),
        version="v1",
        settings=SETTINGS,
    )
    return manifest.save(tmp_path / "manifest.json")


@pytest.mark.slow
def test_killed_run_resumes_and_finishes(manifest_path):
    run_dir = manifest_path.parent / "run"
    first = _start(manifest_path, "--epochs", "40")
    try:
        _read_until(first, lambda e: e["event"] == "epoch" and e["epoch"] == 1)
        deadline = time.monotonic() + 120
        while not (run_dir / "resume.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (run_dir / "resume.pt").exists()
        first.send_signal(signal.SIGKILL)  # a crash: no chance to clean up
    finally:
        first.kill()
        first.communicate()
    assert (run_dir / "best.pt").exists()

    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "segstudio",
            "train",
            "--manifest",
            str(manifest_path),
            "--epochs",
            "3",
            "--resume",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    events = _events(second.stdout)
    start = events[0]
    assert start["event"] == "start" and start["resumed_from"] >= 1
    epochs = [e["epoch"] for e in events if e["event"] == "epoch"]
    assert epochs == list(range(start["resumed_from"] + 1, 4))  # continues, does not start over
    assert not any(e["event"] == "val" and e["epoch"] == 0 for e in events)  # no second baseline
    done = events[-1]
    assert done["event"] == "done" and done["reason"] == "completed" and done["epochs_run"] == 3
    assert not (run_dir / "resume.pt").exists()
    assert load_checkpoint(run_dir / "best.pt").version == "v1"


@pytest.mark.slow
def test_sigterm_stops_gracefully_and_keeps_the_best_checkpoint(manifest_path):
    process = _start(manifest_path, "--epochs", "40")
    try:
        _read_until(process, lambda e: e["event"] == "checkpoint")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    events = _events(out)
    done = events[-1]
    assert done["event"] == "done" and done["reason"] == "cancelled"
    assert done["checkpoint"] and Path(done["checkpoint"]).is_file()
    assert "cancelled" in err


def test_bad_manifest_reports_an_error_event(tmp_path):
    (tmp_path / "m.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "segstudio", "train", "--manifest", str(tmp_path / "m.json")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert result.returncode == 2
    events = _events(result.stdout)
    assert events and events[-1]["event"] == "error" and "manifest" in events[-1]["message"]
    assert "error:" in result.stderr
