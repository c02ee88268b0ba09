"""The single-user path before and after team projects: window start-up and local save latency.

Run under an X server:
`xvfb-run -a .venv/bin/python -m bench.single_user --before /tmp/before [--runs 5]`

`--before` is a checkout of an older commit (e.g. `git worktree add --detach /tmp/before a4323c4^`, the
commit before team support). Both checkouts run with the same interpreter, interleaved run by run
(alternating who goes first) so load from other jobs hits both:

* window start-up: process start -> window on screen with the first photo of a fresh copy of the folder
  (bench.startup's method: fresh HOME, modules byte-compiled first);
* local save: median seconds of `Project.save_mask` (a banded mask the size of the first photo with
  a moved rectangle, 30 saves) in a fresh
  process on a fresh local project of the same photos, per run.

Prints JSON lines per run, then the medians of each checkout and after/before ratios.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.startup import DEFAULT_PHOTOS, IMAGE_SUFFIXES, XWatch, _fresh_copy, _time_to_window

_SAVER = """
import statistics, sys, time
import numpy as np
from segstudio.core.project import Project
folder, state = sys.argv[1:3]
with Project.open(folder, state_dir=state) as project:
    rec = project.images()[0]
    h, w = rec.shape
    times = []
    for step in range(30):
        mask = np.repeat((np.arange(h) // 40 % 11).astype(np.uint8), w).reshape(h, w)
        y, x = (step * 37) % (h - 60), (step * 11) % (w - 80)
        mask[y : y + 60, x : x + 80] = step % 11
        t0 = time.perf_counter()
        project.save_mask(rec, mask)
        times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def _emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def _env(checkout: Path, base: dict[str, str]) -> dict[str, str]:
    return {**base, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}


def _window(checkout: Path, photos: Path, watch: XWatch, timeout: float) -> tuple[float, float | None]:
    with _fresh_copy(checkout.name, photos) as (folder, env):
        names = {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        # run from the checkout: `-m` puts the working directory first on sys.path
        cmd = ["env", "-C", str(checkout), sys.executable, "-m", "segstudio", str(folder)]
        return _time_to_window(cmd, _env(checkout, env), names, watch, timeout)


def _save(checkout: Path, photos: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="single-user-save-") as tmp:
        folder = Path(tmp) / "photos"
        shutil.copytree(photos, folder)
        out = subprocess.run(
            [sys.executable, "-c", _SAVER, str(folder), str(Path(tmp) / "state")],
            env=_env(checkout, dict(os.environ)),
            cwd=checkout,  # `-c` puts the working directory first on sys.path
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return float(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the older commit")
    ap.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args(argv)
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    for path in checkouts.values():
        compileall.compile_dir(str(path / "segstudio"), quiet=1)
    watch = XWatch()
    for path in checkouts.values():  # warm the disk cache, not counted
        _window(path, args.photos, watch, args.timeout)
        _save(path, args.photos)
    window: dict[str, list[float]] = {n: [] for n in checkouts}
    cpu: dict[str, list[float]] = {n: [] for n in checkouts}
    save: dict[str, list[float]] = {n: [] for n in checkouts}
    for i in range(args.runs):
        order = list(checkouts) if i % 2 == 0 else list(reversed(checkouts))
        for name in order:
            load = os.getloadavg()[0]
            seconds, cpu_s = _window(checkouts[name], args.photos, watch, args.timeout)
            saved = _save(checkouts[name], args.photos)
            window[name].append(seconds)
            save[name].append(saved)
            if cpu_s is not None:
                cpu[name].append(cpu_s)
            _emit(bench="single_user_run", checkout=name, run=i, window_s=round(seconds, 3), cpu_s=cpu_s,
                  save_ms=round(1000 * saved, 2), load_average=round(load, 2))  # fmt: skip
    result: dict[str, object] = {"bench": "single_user", "runs": args.runs, "photos": str(args.photos)}
    for name, path in checkouts.items():
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()  # fmt: skip
        result[name] = {
            "commit": commit,
            "window_s_median": round(statistics.median(window[name]), 3),
            "window_cpu_s_median": round(statistics.median(cpu[name]), 3) if cpu[name] else None,
            "local_save_ms_median": round(1000 * statistics.median(save[name]), 2),
        }
    b, a = result["before"], result["after"]
    assert isinstance(a, dict) and isinstance(b, dict)
    result["after_over_before"] = {
        "window": round(a["window_s_median"] / b["window_s_median"], 3),
        "local_save": round(a["local_save_ms_median"] / b["local_save_ms_median"], 3),
    }
    _emit(**result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
