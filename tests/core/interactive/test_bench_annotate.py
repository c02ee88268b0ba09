"""`python -m bench.annotate` end to end on a small synthetic set (the real figures are in docs/smart-tools.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[3]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "bench.annotate", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _synthetic_set(tmp_path: Path) -> tuple[Path, Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        mask = np.zeros((90, 120), np.uint8)
        cv2.circle(mask, (40 + 20 * i, 45), 25, 1, -1)
        mask[70:, :] = 2
        mask[0, :] = 255  # void row
        colours = np.array([[30, 90, 200], [220, 60, 40], [60, 160, 60]], np.uint8)
        image = colours[np.minimum(mask, 2)].astype(np.int16) + rng.integers(-8, 8, (90, 120, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(images / f"im{i}.png")
        Image.fromarray(mask).save(masks / f"im{i}.png")
    scheme = tmp_path / "scheme.json"
    scheme.write_text(
        json.dumps(
            {
                "name": "t",
                "classes": [
                    {"name": n, "color": [i * 60, 0, 0]} for i, n in enumerate(["sky", "ball", "grass"])
                ],
            }
        )
    )
    return images, masks, scheme


def test_annotate_benchmark_json(tmp_path: Path):
    images, masks, scheme = _synthetic_set(tmp_path)
    done = _run(
        "--images",
        str(images),
        "--masks",
        str(masks),
        "--scheme",
        str(scheme),
        "--json",
        "--tools",
        "polygon,ideal,brush,spbrush,wand,box,click:superpixel,click:grabcut",
        "--max-actions",
        "20",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    rows = {r["tool"]: r for r in data["tools"]}
    assert data["meta"]["images"] == ["im0.png", "im1.png"] and data["meta"]["start_accuracy"] == 0.0
    assert rows["ideal"]["median95"] == 3  # one action per true region
    assert rows["polygon"]["median95"] > rows["ideal"]["median95"]
    assert rows["click:superpixel"]["never95"] == 0.0 and rows["click:superpixel"]["median95"] <= 6
    assert rows["click:superpixel"]["noc85"] is not None and rows["click:superpixel"]["latency_ms_p90"] > 0
    bad = _run("--images", str(tmp_path / "nope"), "--masks", str(masks), "--scheme", str(scheme))
    assert bad.returncode == 2 and "error" in bad.stderr


def test_annotate_benchmark_measures_a_sam_checkpoint(tmp_path: Path, tiny_sam_checkpoint: Path, capsys):
    # in-process: the tiny random SAM is registered for this test only (a user passes a real checkpoint)
    from bench import annotate

    images, masks, scheme = _synthetic_set(tmp_path)
    code = annotate.main(
        [
            "--images",
            str(images),
            "--masks",
            str(masks),
            "--scheme",
            str(scheme),
            "--json",
            "--tools",
            "ideal,click:sam",
            "--max-actions",
            "3",
            "--sam-checkpoint",
            str(tiny_sam_checkpoint),
        ]
    )
    assert code == 0
    rows = {r["tool"]: r for r in json.loads(capsys.readouterr().out)["tools"]}
    assert set(rows) == {"ideal", "click:sam"}
    assert rows["click:sam"]["latency_ms_p90"] > 0 and rows["click:sam"]["noc85"] is not None
    assert (
        annotate.main(
            [
                "--images",
                str(images),
                "--masks",
                str(masks),
                "--scheme",
                str(scheme),
                "--sam-checkpoint",
                str(tmp_path / "missing.pth"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_annotate_benchmark_human_robot_after_a_simulated_pre_annotation(tmp_path: Path):
    """--start simulated --human-only: per engine, each click's and scribble's changed area over the
    clicked object's true area, the object's IoU gain and the rest of the image's accuracy change."""
    images, masks, scheme = _synthetic_set(tmp_path)
    done = _run(
        *("--images", str(images), "--masks", str(masks), "--scheme", str(scheme), "--json"),
        *("--start", "simulated", "--human-only", "--tools", "click:superpixel", "--min-object", "0.01"),
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["meta"]["start"] == "simulated" and 0.5 < data["meta"]["start_accuracy"] < 1.0
    (row,) = data["tools"]
    for kind in ("click", "scribble"):
        human = row["human"][kind]
        assert human["actions"] >= 1
        assert 0 < human["ratio_median"] <= human["ratio_p95"] <= human["ratio_max"] <= 2
        assert human["spoiled"] is not None and human["latency_ms_median"] > 0
