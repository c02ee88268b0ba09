"""bench/gpu_proof.sh, the one-call GPU proof of issue 23, exercised on the CPU: its dry run goes through
every step's code path at tiny sizes, a failing step is recorded and the script goes on, the total
budget skips what no longer fits, and the report helper merges it all into one summary.

No GPU is needed (nothing in the suite may require one); the figures themselves come from a device run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import gpu_proof_report as report

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_proof.sh"
STEPS = [
    "deps",
    "env",
    "train_throughput",
    "train_profile",
    "train_memory",
    "predict_throughput",
    "predict_memory",
    "oom_fallback",
    "torchrun_nccl",
    "sam_cuda",
]


def _run(out: Path, *args: str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    for key in ("OUT", "STEPS", "DEVICE", "GPU_PROOF_BUDGET_S", "RANK", "WORLD_SIZE"):
        if key not in env:
            full_env.pop(key, None)
    return subprocess.run(
        ["bash", str(SCRIPT), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_script_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_step_record_says_why_a_step_has_no_figures():
    ok = report.step_record("a", 0, 1.0, 10, '{"bench": "x", "v": 1}\nnoise\n', "")
    assert ok["records"] == [{"bench": "x", "v": 1}] and "error" not in ok
    failed = report.step_record("b", 2, 1.0, 10, "", "Traceback...\nDeviceError: no CUDA")
    assert "exit status 2" in failed["error"] and "no CUDA" in failed["error"]
    silent = report.step_record("c", 0, 1.0, 10, "not json\n", "")
    assert silent["error"].startswith("printed no JSON figures")
    timed_out = report.step_record("d", 124, 10.0, 10, '{"bench": "train", "ratio": 1.1}\n', "")
    assert timed_out["timed_out"] and "timed out after 10 s" in timed_out["error"]
    assert timed_out["records"] == [{"bench": "train", "ratio": 1.1}]  # partial figures are kept


def test_summary_lists_every_expected_step_and_checks_the_goals(tmp_path):
    lines = [
        report.step_record(
            "train_throughput",
            0,
            5,
            200,
            "\n".join(
                json.dumps(r)
                for r in [
                    {
                        "bench": "train",
                        "arch": "a",
                        "crop": 256,
                        "ours_images_per_s": 10.0,
                        "reference_images_per_s": 8.0,
                        "ratio": 1.25,
                        "ours_precision": "float32",
                        "reference_precision": "float32",
                    },
                    {
                        "bench": "train",
                        "arch": "b",
                        "crop": 512,
                        "ours_images_per_s": 7.0,
                        "reference_images_per_s": 10.0,
                        "ratio": 0.7,
                        "ours_precision": "bfloat16",
                        "reference_precision": "bfloat16",
                    },
                    {
                        "bench": "train",
                        "arch": "c",
                        "crop": 256,
                        "precision": "float32",
                        "error": "OutOfMemoryError: x",
                    },
                ]
            ),
            "",
        ),
        report.step_record("predict_throughput", 1, 5, 90, "", "boom"),
    ]
    (tmp_path / report.STEPS_FILE).write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    summary = report.build_summary(tmp_path, ["env", "train_throughput", "predict_throughput"], "test")
    assert set(summary["steps"]) == {"env", "train_throughput", "predict_throughput"}
    assert summary["steps"]["env"]["error"].startswith("not run")
    assert summary["headline"]["train_min_ratio"] == 0.7 and summary["headline"]["train_goal_met"] is False
    assert summary["headline"]["predict_goal_met"] is None
    assert summary["headline"]["train_pairs_measured"] == 2 and summary["headline"]["train_pairs_failed"] == 1
    md = (tmp_path / report.SUMMARY_MD).read_text()
    assert "| b | 512 | bfloat16 | 7.00 | bfloat16 | 10.00 | 0.70 | – | – |  |" in md
    assert "| c | 256 | float32 | – | – | – | – | – | – | OutOfMemoryError: x |" in md
    assert "| predict_throughput | error |" in md and "| env | not run |" in md
    assert json.loads((tmp_path / report.SUMMARY_JSON).read_text()) == summary


def test_budget_skips_steps_that_no_longer_fit(tmp_path):
    result = _run(tmp_path, "--budget", "10", timeout=120, STEPS="env,train_throughput")
    assert result.returncode == 0, result.stderr
    steps = _summary(tmp_path)["steps"]
    assert set(steps) == {"env", "train_throughput"}
    assert all(s["error"].startswith("skipped: only") and not s["records"] for s in steps.values())


def test_a_failing_step_is_recorded_and_the_next_one_runs(tmp_path):
    result = _run(tmp_path, "--dry-run", timeout=300, STEPS="train_memory,env", DEVICE="no-such-device")
    assert result.returncode == 0, result.stderr
    steps = _summary(tmp_path)["steps"]
    assert steps["train_memory"]["rc"] not in (0, None) and "no-such-device" in steps["train_memory"]["error"]
    env = steps["env"]
    assert "error" not in env and env["records"][0]["bench"] == "env"
    assert env["records"][0]["versions"]["torch"]


@pytest.mark.slow
def test_dry_run_gives_every_step_figures_on_the_cpu(tmp_path):
    t0 = time.monotonic()
    result = _run(tmp_path, "--dry-run", timeout=900)
    seconds = time.monotonic() - t0
    assert result.returncode == 0, result.stderr[-3000:]
    summary = _summary(tmp_path)
    assert summary["mode"] == "dry-run" and summary["expected_steps"] == STEPS
    for name in STEPS:
        step = summary["steps"][name]
        assert step["records"] or step.get("error"), name
        # on a CPU every step still has figures; only the CUDA-only OOM cases say so inside their records
        assert step["records"] and not step.get("error"), (name, step.get("error"))
    train = summary["steps"]["train_throughput"]["records"]
    assert train[0]["ratio"] > 0 and train[0]["reference_precision"] == "float32"
    profile = {r["side"]: r for r in summary["steps"]["train_profile"]["records"]}
    assert set(profile) == {"ours", "reference"} and profile["ours"]["wall_ms_per_step"] > 0
    assert profile["ours"]["top_self_cpu_ms"]  # the operators that cost the time, named
    predict = summary["steps"]["predict_throughput"]["records"][0]
    assert {"plain", "ours_no_crf", "ours_crf"} <= set(predict) and predict["ratio_no_crf_vs_plain"] > 0
    assert "nvidia-smi" in predict["plain"]["gpu_busy"]["error"]  # no driver here: said, not hidden
    oom = {r["case"]: r for r in summary["steps"]["oom_fallback"]["records"]}
    assert oom["batch_to_single"]["recovered"] is True and oom["batch_to_single"]["forced_ooms"] == 1
    assert "needs CUDA" in oom["halve_tile"]["error"]
    ddp = summary["steps"]["torchrun_nccl"]["records"][0]
    assert ddp["layout_equal"] is True and ddp["torchrun"]["exit"] == 0 and ddp["torchrun"]["world_size"] == 1
    assert "nothing to install" in summary["steps"]["deps"]["records"][0]["note"]  # no .whl/ here
    sam = [r for r in summary["steps"]["sam_cuda"]["records"] if r["bench"] == "sam_summary"]
    assert sam and sam[0]["embed_s_median"] > 0
    # what comes back from a device call: at most 8 files, so the folder holds only these
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "log.txt",
        "steps.jsonl",
        "summary.json",
        "summary.md",
    ]
    md = (tmp_path / "summary.md").read_text()
    assert "## Fine-tuning throughput" in md and "## torchrun" in md
    print(f"dry run: {seconds:.0f} s")


def test_train_arch_list_puts_the_named_archs_first_then_all_the_others():
    from bench.train import expand_archs
    from segstudio.ml.models import available_archs

    assert expand_archs("all") == available_archs()
    order = expand_archs("unet_resnet34,lraspp_mobilenet_v3_large,all")
    assert order[:2] == ["unet_resnet34", "lraspp_mobilenet_v3_large"]
    assert sorted(order) == sorted(available_archs())  # every arch once
    assert expand_archs("a,,b,a") == ["a", "b"]
