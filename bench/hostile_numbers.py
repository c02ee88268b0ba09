"""Cost of the hostile files of issue 18, each run from the CLI in a fresh process.

    .venv/bin/python -m bench.hostile_numbers

Cases: a labelme polygon of 1,000,000 points on a circle (was 425 s; now simplified with a
warning), the same file with a 4-point polygon (the reference, same run), a COCO polygon with
vertices at 1e9 (was SIGSEGV), a 70-byte RGB mask PNG claiming 60000x60000 (was 2.26 GB before
refusal) and a 3.4 MB checkpoint whose tensor inflates to 3.5 GB (was 3.5 GB before refusal; its
reference is a plain checkpoint, whose cost is torch's import). One JSON line per case: exit code,
wall time, peak RSS of the child (`/usr/bin/time` %M).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.hostile_files import deflate_bomb


def _cli(args: list[str], home: Path) -> dict:
    """Run `segstudio ARGS` under /usr/bin/time (its %M: the child's own peak RSS, not inherited)."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m", "segstudio", *args],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    rss = next((int(line.split("=")[1]) for line in reversed(lines) if line.startswith("maxrss_kb=")), 0)
    lines = [line for line in lines if not line.startswith(("maxrss_kb=", "Command exited"))]
    return {
        "exit": done.returncode,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(rss / 1024),
        "traceback": "Traceback" in done.stderr,
        "message": lines[-1][:160] if lines else "",
    }


def _labelme(root: Path, points: list[list[float]]) -> Path:
    root.mkdir(parents=True)
    Image.new("RGB", (64, 48)).save(root / "a.png")
    doc = {
        "shapes": [{"label": "car", "points": points}],
        "imagePath": "a.png",
        "imageHeight": 48,
        "imageWidth": 64,
    }
    (root / "a.json").write_text(json.dumps(doc))
    return root


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        home = tmp_path / "home"
        n = 1_000_000
        circle = [
            [32 + 20 * math.cos(2 * math.pi * i / n), 24 + 20 * math.sin(2 * math.pi * i / n)]
            for i in range(n)
        ]
        cases = {
            "reference: labelme 4-point polygon": ["import", "labelme", str(_labelme(tmp_path / "small", [[1, 1], [40, 1], [40, 30], [1, 30]])), "--out", str(tmp_path / "p0")],
            "labelme 1,000,000-point polygon": ["import", "labelme", str(_labelme(tmp_path / "big", circle)), "--out", str(tmp_path / "p1")],
        }  # fmt: skip
        del circle
        coco = tmp_path / "coco"
        (coco / "images").mkdir(parents=True)
        (coco / "annotations").mkdir()
        Image.new("RGB", (64, 48)).save(coco / "images" / "a.png")
        data = {
            "images": [{"id": 1, "file_name": "a.png", "height": 48, "width": 64}],
            "categories": [{"id": 1, "name": "car"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 1e9, 0, 1e9, 1e9]]}
            ],
        }
        (coco / "annotations" / "instances_train.json").write_text(json.dumps(data))
        cases["COCO polygon with vertices at 1e9"] = [
            "import",
            "coco",
            str(coco),
            "--out",
            str(tmp_path / "p2"),
        ]
        masks = tmp_path / "masks"
        (masks / "images").mkdir(parents=True)
        (masks / "masks").mkdir()
        Image.new("RGB", (64, 48)).save(masks / "images" / "a.png")
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bench.fuzz_cases import _header_only

        (masks / "masks" / "a.png").write_bytes(_header_only(60000, 60000, 2))
        scheme = {
            "name": "s",
            "classes": [{"name": "bg", "color": [0, 0, 0]}, {"name": "car", "color": [200, 0, 0]}],
        }
        (masks / "scheme.json").write_text(json.dumps(scheme))
        cases["RGB mask PNG header claiming 60000x60000 (--dry-run)"] = [
            "import",
            "masks",
            str(masks),
            "--dry-run",
        ]
        import torch

        plain, bomb = tmp_path / "plain.pt", tmp_path / "bomb.pt"
        torch.save({"weight": torch.zeros(1)}, plain)
        deflate_bomb(plain, bomb, 3500 * 2**20)
        folder = tmp_path / "photos"
        folder.mkdir()
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(folder / "a.png")
        cases["reference: predict --weights with a plain 1-tensor checkpoint (torch's import alone)"] = ["predict", str(folder), "--weights", str(plain), "--device", "cpu"]  # fmt: skip
        cases[f"checkpoint of {bomb.stat().st_size / 2**20:.1f} MB inflating to 3.5 GB"] = ["predict", str(folder), "--weights", str(bomb), "--device", "cpu"]  # fmt: skip
        for name, args in cases.items():
            print(json.dumps({"case": name, **_cli(args, home)}), flush=True)


if __name__ == "__main__":
    main()
