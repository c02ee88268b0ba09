"""The long fuzz run: hostile datasets and checkpoints for N minutes, every non-SegStudioError a failure.

    .venv/bin/python -m bench.fuzz --minutes 5 [--targets labelme,coco] [--seed 0]

Round-robin over the targets of `bench.fuzz_cases` (labelme, COCO, VOC, mask folder, checkpoint,
resume), each round a Hypothesis run of `--chunk` cases with its own seed (so generation and
shrinking work as in the tests, and a failure is shrunk to a small example). Prints one JSON line
per failure (target, exception, the shrunk case) and a final JSON summary: cases run per target,
failures, distinct failures by exception and place. Exit 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from collections import Counter
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _where(error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/segstudio/" in f.filename]
    frame = frames[-1] if frames else traceback.extract_tb(error.__traceback__)[-1]
    return f"{frame.filename.split('/segstudio/')[-1]}:{frame.lineno} {frame.name}"


def _round(target: str, seed: int, chunk: int, counts: Counter[str], last: dict[str, Any]) -> Any:
    """One Hypothesis run of `chunk` cases of `target`; `last` receives the (shrunk) failing case."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    from bench.fuzz_cases import TARGETS, Failure, run_case

    @settings(
        max_examples=chunk,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @with_seed(seed)
    @given(TARGETS[target][0])
    def one(case: Any) -> None:
        counts[target] += 1
        try:
            run_case(target, case)
        except Failure as failure:
            last.update(
                target=target, error=str(failure), where=_where(failure.__cause__), case=repr(case)[:600]
            )
            raise

    return one


def fuzz(minutes: float, targets: list[str], seed: int, chunk: int) -> dict[str, Any]:
    import torch

    from bench.fuzz_cases import Failure

    torch.set_num_threads(1)
    counts: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60 * minutes
    round_number = 0
    while time.monotonic() < deadline:
        target = targets[round_number % len(targets)]
        round_number += 1
        last: dict[str, Any] = {}
        one = _round(target, seed * 100_003 + round_number, chunk, counts, last)

        try:
            one()
        except Failure:
            failures.append(dict(last))
            print(json.dumps({"failure": last}), flush=True)
    distinct = Counter(f"{f['target']}: {f['error'].split(':')[1].strip()} at {f['where']}" for f in failures)
    return {
        "minutes": minutes,
        "cases": sum(counts.values()),
        "cases_per_target": dict(counts),
        "failures": len(failures),
        "distinct_failures": dict(distinct),
    }  # fmt: skip


def main() -> int:
    from bench.fuzz_cases import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=50, help="cases per Hypothesis round")
    args = parser.parse_args()
    summary = fuzz(args.minutes, [t for t in args.targets.split(",") if t], args.seed, args.chunk)
    print(json.dumps(summary))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
