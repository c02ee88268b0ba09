"""Run every benchmark with its short default settings (`make bench`); each prints JSON lines.

Each benchmark runs in its own interpreter so import costs and caches of one never flatter another.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "project_reopen",
    "gui",
    "export",
    "inference",
    "train",
    "crf",
    "click_crf",
    "memory",
    "crf_defaults",
)


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f'{{"bench_module": "bench.{name}"}}', flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
