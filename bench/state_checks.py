"""What the hostile-state checks cost at every open: the link walk and the database health check.

Run: `.venv/bin/python -m bench.state_checks [--images 10000] [--runs 5]`

Builds a project of tiny PNGs with a mask and a prediction for every image (so the state folder holds
2 x N files), then times, as medians of `--runs`: `check_state_folder` (the lstat walk of the state
folder), `check_schema` (tables + `PRAGMA quick_check`), and, as the reference measured in the same
run, a whole reopen (`Project.open` + `close`), which includes both. One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.project_reopen import _png_bytes, build_folder


def _emit(**record: object) -> None:
    print(json.dumps({"bench": "state_checks", **record}), flush=True)


def _median(fn, runs: int) -> dict[str, object]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    from segstudio.core.project import DB_NAME, Project
    from segstudio.core.state_guard import check_state_folder
    from segstudio.core.store_health import check_schema

    temp = Path(tempfile.mkdtemp(prefix="segstudio-bench-"))
    try:
        folder = temp / "images"
        build_folder(folder, args.images)
        with Project.open(folder) as project:
            for rec in project.images():  # files as the app leaves them (written directly: no fsync each)
                project.mask_path(rec).write_bytes(_png_bytes(rec.id))
                project.prediction_path(rec).write_bytes(_png_bytes(rec.id))
            state = project.state_dir
        files = sum(1 for p in state.rglob("*") if p.is_file())
        _emit(metric="setup", images=args.images, state_files=files)

        _emit(
            metric="check_state_folder_s",
            **_median(lambda: check_state_folder(state, sidecar=True), args.runs),
        )

        def health() -> None:
            with contextlib.closing(sqlite3.connect(state / DB_NAME)) as conn:
                check_schema(conn, state, existed=True)

        _emit(metric="check_schema_s", **_median(health, args.runs))
        _emit(
            metric="reopen_s (reference, includes both)",
            **_median(lambda: Project.open(folder).close(), args.runs),
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
