"""`python -m bench.click_model curve`: the README's learning curve, drawn with pyqtgraph from
`bench.annotate --json` results."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench import click_model as bench_click_model


def _result(path: Path, mean90: float, start: str = "model", cap: int = 120) -> str:
    row = {
        "tool": "click:learned",
        "mean90": mean90,
        "mean95": cap,
        "noc85": 7.5,
        "final_accuracy": 0.94,
        "images": 8,
    }
    other = dict(row, tool="click:superpixel", mean90=99.0)
    path.write_text(json.dumps({"meta": {"start": start, "max_actions": cap}, "tools": [other, row]}))
    return str(path)


def test_the_curve_reads_the_learned_rows_and_draws_a_png(qapp, tmp_path, capsys):
    out = tmp_path / "curve.png"
    b = _result(tmp_path / "b.json", 38.0)
    a = _result(tmp_path / "a.json", 32.0)
    bench_click_model.main(["curve", "--result", f"99={b}", "--result", f"25={a}", "--out", str(out)])
    points = json.loads(capsys.readouterr().out)["points"]
    # sorted by images; the learned rows only
    assert [(p["images"], p["mean90"]) for p in points] == [(25, 32.0), (99, 38.0)]
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] > 400
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 10  # drawn, not a blank canvas


def test_results_of_different_protocols_are_refused(qapp, tmp_path):
    """A curve mixing an empty-mask run with a from-the-prediction run would compare unlike figures."""
    a = _result(tmp_path / "a.json", 32.0, start="empty", cap=60)
    b = _result(tmp_path / "b.json", 38.0)
    with pytest.raises(SystemExit, match="different start masks"):
        bench_click_model.main(
            ["curve", "--result", f"25={a}", "--result", f"99={b}", "--out", str(tmp_path / "c.png")]
        )
    assert not (tmp_path / "c.png").exists()
