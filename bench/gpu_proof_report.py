"""The figures of `bench/gpu_proof.sh`, merged: one record per step, a summary JSON and a markdown table.

    python -m bench.gpu_proof_report env                       # the machine (no torch import): JSON line
    python -m bench.gpu_proof_report deps --wheels .whl --target DIR   # carried wheels, installed offline
    python -m bench.gpu_proof_report record --out DIR --name STEP --rc RC --seconds S --budget B \\
        --stdout FILE --stderr FILE                            # one step's outcome -> DIR/steps.jsonl
    python -m bench.gpu_proof_report summary --out DIR --steps a,b,c   # DIR/summary.json + summary.md

Why a separate helper: the shell script stays a list of timed commands, and the summary is rebuilt
after every step, so a run cut short by the device call's time limit still leaves a complete
summary of what ran (the steps that did not run are listed as such). A step "has figures" when its
command printed at least one JSON line; its `error` is set when the command failed, timed out, or
printed nothing, so every step of the summary has either figures or a recorded error (or both: a step
that timed out keeps the lines it printed before). Standard library only (runs before torch is known
to import on the device machine).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STEPS_FILE, SUMMARY_JSON, SUMMARY_MD = "steps.jsonl", "summary.json", "summary.md"
TIMEOUT_CODES = (124, 137)
#: modules the steps import -> the distribution to carry as a wheel when it is missing
NEEDED = {
    "torch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "skimage": "scikit-image",
    "scipy": "scipy",
    "pydensecrf": "pydensecrf2",
    "segment_anything": "segment-anything",
}


# ------------------------------------------------------------------------------------------- env


def env_record() -> dict[str, Any]:
    """The machine and the software the figures come from; `missing` names what must be carried."""
    record: dict[str, Any] = {
        "bench": "env",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
    }
    versions = {}
    for dist in sorted(set(NEEDED.values())):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    record["versions"] = versions
    record["missing"] = sorted(NEEDED[m] for m in NEEDED if importlib.util.find_spec(m) is None)
    smi = shutil.which("nvidia-smi")
    if smi:
        query = "--query-gpu=name,driver_version,memory.total,utilization.gpu"
        try:
            out = subprocess.run(
                [smi, query, "--format=csv,noheader"], capture_output=True, text=True, timeout=20
            )
            record["gpus"] = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError) as error:
            record["gpus_error"] = str(error)
    else:
        record["gpus"] = []
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        record["commit"] = head.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        record["commit"] = None
    return record


def install_wheels(wheels: Path, target: Path, python: str = sys.executable) -> dict[str, Any]:
    """Install the carried wheels/sdists (`bench/gpu_wheels.sh` fetches them) into `target`, offline.

    The device machine's image lacks segment-anything and pydensecrf2 and can reach no registry; the
    sdist of pydensecrf2 is built there (Cython, numpy and a compiler are in the image)."""
    files = sorted(p for p in wheels.iterdir() if p.suffix in (".whl", ".gz")) if wheels.is_dir() else []
    record: dict[str, Any] = {"bench": "deps", "wheels": [p.name for p in files], "target": str(target)}
    if not files:
        record["note"] = f"nothing to install ({wheels} has no wheels); see bench/gpu_wheels.sh"
        return record
    command = [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
               "--no-cache-dir", "--upgrade", "--target", str(target), *map(str, files)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    record.update(exit=proc.returncode, seconds=round(time.perf_counter() - t0, 1))
    if proc.returncode != 0:
        record["stderr_tail"] = proc.stderr[-1500:]
    return record


# ------------------------------------------------------------------------------------------ steps


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects a step printed, one per line (other lines are ignored)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                records.append(value)
    return records


def step_record(
    name: str,
    rc: int | None,
    seconds: float,
    budget: float,
    stdout: str,
    stderr: str,
    skipped: str | None = None,
) -> dict[str, Any]:
    records = json_lines(stdout)
    out: dict[str, Any] = {
        "step": name,
        "rc": rc,
        "seconds": round(seconds, 1),
        "budget_s": budget,
        "timed_out": rc in TIMEOUT_CODES,
        "records": records,
    }
    tail = stderr.strip()[-1500:]
    if skipped:
        out["error"] = skipped
    elif rc in TIMEOUT_CODES:
        out["error"] = f"timed out after {budget:g} s (kept the {len(records)} line(s) printed before)"
    elif rc != 0:
        out["error"] = f"exit status {rc}: {tail or '(no stderr)'}"
    elif not records:
        out["error"] = f"printed no JSON figures: {tail or '(no stderr)'}"
    if tail and "error" in out and not skipped:
        out["stderr_tail"] = tail
    return out


def load_steps(folder: Path) -> dict[str, dict[str, Any]]:
    """The last record of each step in `folder/steps.jsonl` (a rerun of a step replaces it)."""
    path = folder / STEPS_FILE
    steps: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for rec in json_lines(path.read_text(encoding="utf-8", errors="replace")):
            steps[rec.get("step", "?")] = rec
    return steps


# ---------------------------------------------------------------------------------------- summary


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _records(steps: dict[str, Any], name: str, bench: str | None = None) -> list[dict[str, Any]]:
    recs = steps.get(name, {}).get("records", [])
    return [r for r in recs if bench is None or r.get("bench") == bench]


def headline(steps: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, checked against the figures (None where the figure is missing)."""
    train = _records(steps, "train_throughput", "train")
    ratios = [r["ratio"] for r in train if "ratio" in r]
    predict = next(iter(_records(steps, "predict_throughput", "gpu_predict")), {})
    no_crf = predict.get("ours_no_crf", {})
    ddp = next(iter(_records(steps, "torchrun_nccl", "gpu_ddp")), {})
    oom = _records(steps, "oom_fallback", "gpu_memory_oom")
    return {
        "train_min_ratio": min(ratios) if ratios else None,
        "train_pairs_measured": len(ratios),
        "train_pairs_failed": sum(1 for r in train if "error" in r),
        "train_goal_met": (min(ratios) >= 1.0) if ratios else None,
        "predict_ratio_no_crf": predict.get("ratio_no_crf_vs_plain"),
        "predict_ratio_crf": predict.get("ratio_crf_vs_plain"),
        "predict_goal_met": (predict["ratio_no_crf_vs_plain"] >= 0.9)
        if "ratio_no_crf_vs_plain" in predict
        else None,
        "predict_gpu_busy_active_pct": no_crf.get("gpu_busy", {}).get("active_mean_pct"),
        "torchrun_layout_equal": ddp.get("layout_equal"),
        "oom_recovered": {r.get("case"): r.get("recovered") for r in oom} or None,
    }


def markdown(summary: dict[str, Any]) -> str:
    steps = summary["steps"]
    env = next(iter(_records(steps, "env", "env")), {})
    gpus = ", ".join(env.get("gpus") or []) or "none found"
    versions = env.get("versions") or {}
    lines = [
        "# GPU proof: figures",
        "",
        f"Machine: {gpus}; Python {env.get('python', '?')}, torch {versions.get('torch', '?')}, "
        f"torchvision {versions.get('torchvision', '?')}; commit {env.get('commit') or '?'}; "
        f"mode {summary.get('mode', '?')}; generated {summary['generated_at']}.",
        "",
        "## Steps",
        "",
    ]
    rows = []
    for name in summary["expected_steps"]:
        step = steps.get(name, {})
        error = (step.get("error") or "").splitlines()[0][:120] if step.get("error") else ""
        if step.get("not_run"):
            status = "not run"
        elif step.get("rc") is None and error:
            status = "skipped"
        else:
            status = "ok" if not error else ("partial" if step.get("records") else "error")
        rows.append(
            [name, status, step.get("seconds"), step.get("budget_s"), len(step.get("records", [])), error]
        )
    lines += _table(["step", "status", "seconds", "budget s", "JSON lines", "error"], rows)

    train = _records(steps, "train_throughput", "train")
    rows = [[r["arch"], r["crop"], r.get("ours_precision", r.get("precision")), r.get("ours_images_per_s"),
             r.get("reference_precision"), r.get("reference_images_per_s"), r.get("ratio"),
             r.get("ours_peak_mb"), r.get("reference_peak_mb"), (r.get("error") or "")[:100]]
            for r in train]  # fmt: skip
    if rows:
        lines += ["## Fine-tuning throughput (images/s, ours vs the torchvision-reference loop)", ""]
        lines += _table(["arch", "crop", "ours precision", "ours", "reference precision", "reference", "ratio",
                         "ours peak MiB", "reference peak MiB", "error"], rows)  # fmt: skip

    prof = _records(steps, "train_profile", "gpu_profile")
    rows = [[r["side"], r["arch"], r["crop"], r.get("precision"), r.get("wall_ms_per_step"),
             r.get("gpu_kernel_ms_per_step"), r.get("gpu_share_of_wall"), r.get("kernel_launches_per_step"),
             r.get("host_syncs_per_step"), r.get("scalar_reads_per_step"), r.get("launch_bound"),
             ", ".join(f"{k} {v}" for k, v in (r.get("top_self_cpu_ms") or [])[:3])] for r in prof]  # fmt: skip
    if rows:
        lines += ["## Training step profile (torch.profiler, per step)", ""]
        lines += _table(["side", "arch", "crop", "precision", "wall ms", "GPU kernel ms", "GPU share",
                         "launches", "host syncs", "scalar reads", "launch-bound", "top self-CPU ops (ms)"],
                        rows)  # fmt: skip

    mem = _records(steps, "train_memory", "train")
    rows = [[r["arch"], r["crop"], r.get("batch"), r.get("ours_precision", r.get("precision")),
             r.get("ours_peak_mb"), r.get("ours_images_per_s"), (r.get("error") or "")[:100]]
            for r in mem]  # fmt: skip
    if rows:
        lines += ["## Training peak GPU memory (torch.cuda.max_memory_allocated, MiB)", ""]
        lines += _table(["arch", "crop", "batch", "precision", "peak MiB", "images/s", "error"], rows)

    predict = next(iter(_records(steps, "predict_throughput", "gpu_predict")), None)
    if predict:
        lines += [
            "## Pre-annotation throughput",
            "",
            f"{predict.get('count')} photos ({predict.get('photos')}), {predict.get('size')} px, "
            f"model {predict.get('model')}, device {predict.get('device')}.",
            "",
        ]
        rows = []
        plain = predict.get("plain", {}).get("photos_per_s")
        for run in ("plain", "ours_no_crf", "ours_crf"):
            r = predict.get(run)
            if r:
                busy = r.get("gpu_busy", {})
                ratio = round(r["photos_per_s"] / plain, 3) if plain and r.get("photos_per_s") else None
                rows.append([run, r.get("photos_per_s"), r.get("seconds"), ratio, r.get("precision", "float32"),
                             busy.get("active_mean_pct"), busy.get("mean_pct"),
                             (r.get("error") or busy.get("error") or "")[:100]])  # fmt: skip
        lines += _table(["run", "photos/s", "seconds", "vs plain", "precision", "GPU busy % (active)",
                         "GPU busy % (whole run)", "note"], rows)  # fmt: skip

    peak = _records(steps, "predict_memory", "gpu_memory_peak")
    rows = [[r["case"], r["size"], r.get("megapixels"), r.get("max_side"), r.get("peak_gpu_mb"), r.get("peak_rss_mb"),
             r.get("seconds")] for r in peak]  # fmt: skip
    if rows:
        lines += ["## Prediction peak memory at the pixel cap", ""]
        lines += _table(["case", "size", "MP", "max side", "peak GPU MiB", "peak RSS MiB", "seconds"], rows)

    oom = _records(steps, "oom_fallback", "gpu_memory_oom")
    rows = []
    for r in oom:
        detail = r.get("error") or ", ".join(
            f"{k} {r[k]}"
            for k in (
                "forced_ooms",
                "final_tile_size",
                "final_device",
                "fallback_notes",
                "images",
                "allowed_mb",
            )
            if k in r
        )
        rows.append([r.get("case"), r.get("recovered"), detail[:140]])
    if rows:
        lines += ["## Out-of-memory fallbacks (forced)", ""]
        lines += _table(["case", "recovered", "details"], rows)

    ddp = next(iter(_records(steps, "torchrun_nccl", "gpu_ddp")), None)
    if ddp:
        tr, pl = ddp.get("torchrun", {}), ddp.get("plain", {})
        lines += ["## torchrun", ""]
        lines += _table(
            ["nproc", "backend for device", "process group expected", "NCCL log lines", "torchrun exit",
             "plain exit", "world size", "same checkpoint layout"],
            [[ddp.get("nproc"), ddp.get("backend_for_device"), ddp.get("process_group_expected"),
              tr.get("nccl_log_lines"), tr.get("exit"), pl.get("exit"), tr.get("world_size"), ddp.get("layout_equal")]],
        )  # fmt: skip

    sam = next(iter(_records(steps, "sam_cuda", "sam_summary")), None)
    if sam:
        lines += ["## SAM click engine", ""]
        lines += _table(
            ["arch", "device", "embedding s (median)", "click ms (median)", "click ms (p90)", "first click, prefetched ms"],
            [[sam.get("arch"), sam.get("device"), sam.get("embed_s_median"), sam.get("decode_ms_median"),
              sam.get("decode_ms_p90"), sam.get("first_click_prefetched_ms_median")]],
        )  # fmt: skip

    goals = summary["headline"]
    lines += ["## Goals", ""]
    lines += _table(
        ["goal", "figure", "met"],
        [
            ["fine-tuning >= 1.0x reference, every arch and crop", goals["train_min_ratio"], goals["train_goal_met"]],
            ["predict (no CRF) >= 0.9x plain loop", goals["predict_ratio_no_crf"], goals["predict_goal_met"]],
            ["GPU busy >= 80 % while predicting", goals["predict_gpu_busy_active_pct"],
             None if goals["predict_gpu_busy_active_pct"] is None else goals["predict_gpu_busy_active_pct"] >= 80],
            ["torchrun writes the plain run's checkpoint layout", goals["torchrun_layout_equal"], goals["torchrun_layout_equal"]],
        ],
    )  # fmt: skip
    return "\n".join(lines)


def build_summary(folder: Path, expected: list[str], mode: str) -> dict[str, Any]:
    steps = load_steps(folder)
    for name in expected:
        if name not in steps:
            steps[name] = {
                "step": name,
                "rc": None,
                "records": [],
                "not_run": True,
                "error": "not run (the script stopped before it)",
            }
    summary = {
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": mode,
        "expected_steps": expected,
        "steps": steps,
        "headline": headline(steps),
    }
    _write(folder / SUMMARY_JSON, json.dumps(summary, indent=1) + "\n")
    _write(folder / SUMMARY_MD, markdown(summary) + "\n")
    return summary


def _write(path: Path, text: str) -> None:
    """Atomic: a summary being rewritten when the time limit strikes is never half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env")
    deps = sub.add_parser("deps")
    deps.add_argument("--wheels", type=Path, required=True)
    deps.add_argument("--target", type=Path, required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--name", required=True)
    rec.add_argument("--rc", type=int)
    rec.add_argument("--seconds", type=float, default=0.0)
    rec.add_argument("--budget", type=float, default=0.0)
    rec.add_argument("--stdout", type=Path)
    rec.add_argument("--stderr", type=Path)
    rec.add_argument("--skipped", help="why the step did not run")
    summ = sub.add_parser("summary")
    summ.add_argument("--out", type=Path, required=True)
    summ.add_argument("--steps", default="", help="comma-separated steps the run was meant to have")
    summ.add_argument("--mode", default="gpu")
    args = parser.parse_args(argv)
    if args.command == "env":
        print(json.dumps(env_record()), flush=True)
        return 0
    if args.command == "deps":
        record = install_wheels(args.wheels, args.target)
        print(json.dumps(record), flush=True)
        return 0 if record.get("exit", 0) == 0 else 1
    if args.command == "record":

        def read(path: Path | None) -> str:
            return path.read_text(encoding="utf-8", errors="replace") if path and path.is_file() else ""

        rec_ = step_record(args.name, args.rc, args.seconds, args.budget, read(args.stdout), read(args.stderr),
                           args.skipped)  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / STEPS_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec_) + "\n")
        print(
            f"{args.name}: {'ok' if 'error' not in rec_ else rec_['error'].splitlines()[0][:200]}",
            file=sys.stderr,
        )
        return 0
    build_summary(args.out, [s for s in args.steps.split(",") if s], args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
