"""Effort telemetry: the active-time clock, the per-version summary, and the project table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.effort import (
    IDLE_GAP,
    MANUAL,
    EffortClock,
    EffortRow,
    action_key,
    engine_of,
    summarize_by_engine,
    summarize_effort,
)
from segstudio.core.project import Project, Status


def test_clock_counts_active_time_and_skips_idle_gaps():
    clock = EffortClock()
    clock.action("brush", 100.0)
    clock.touch(105.0)  # drag
    clock.action("click", 110.0)
    clock.action("click", 110.0 + IDLE_GAP + 1)  # back from a break: the gap is not counted
    clock.action("click", 110.0 + IDLE_GAP + 3)
    seconds, actions = clock.take()
    assert seconds == 12.0
    assert actions == {"brush": 1, "click": 3}
    assert clock.empty
    clock.action("wand", 500.0)  # after take(), the next interval starts fresh
    assert clock.take() == (0.0, {"wand": 1})


def test_summary_per_model_version_over_done_images():
    rows = [
        EffortRow("a", "done", "v1", 100.0, {"brush": 30}, 0.20),
        EffortRow("b", "done", "v1", 60.0, {"brush": 10, "click": 2}, 0.10),
        EffortRow("c", "done", "v2", 20.0, {"click": 4}, 0.05),
        EffortRow("d", "in_progress", "v2", 999.0, {"click": 99}, 0.9),  # not done: left out
        EffortRow("e", "done", None, 300.0, {"polygon": 80}, None),
    ]
    out = summarize_effort(rows)
    assert [g["model_version"] for g in out] == ["v1", "v2", None]
    v1, v2, none = out
    assert v1["images"] == 2 and v1["median_seconds"] == 80.0 and v1["median_actions"] == 21
    assert v1["actions_by_tool"] == {"brush": 40, "click": 2}
    assert v2["images"] == 1 and v2["median_actions"] == 4 and v2["median_changed_fraction"] == 0.05
    assert none["median_changed_fraction"] is None


def test_project_stores_and_accumulates_effort(photo_dir: Path):
    with Project.open(photo_dir) as project:
        rec = project.get("img2.jpg")
        h, w = rec.shape
        project.save_prediction(rec, np.zeros((h, w), np.uint8), np.full((h, w), 200, np.uint8), "v1")
        project.add_effort(rec, 30.0, {"click": 3}, 0.10)
        project.add_effort(rec, 12.5, {"click": 1, "brush": 2}, None)  # no prediction shown: fraction kept
        project.set_status(project.get("img2.jpg"), Status.DONE)
    with Project.open(photo_dir) as project:  # persisted
        (row,) = project.effort_rows()
        assert row.rel_path == "img2.jpg" and row.status == "done" and row.model_version == "v1"
        assert (
            row.seconds == 42.5 and row.actions == {"click": 4, "brush": 2} and row.changed_fraction == 0.10
        )
        assert summarize_effort(project.effort_rows())[0]["median_seconds"] == 42.5


def test_action_keys_carry_the_engine_and_old_keys_still_count():
    assert action_key("click", "sam") == "click:sam" and action_key("brush") == "brush"
    assert engine_of("click:sam") == "sam" and engine_of("box:superpixel") == "superpixel"
    assert engine_of("brush") == engine_of("polygon") == MANUAL
    assert engine_of("wand") == "wand" and engine_of("click") == "click"  # saved before engines were recorded


def test_summary_by_engine_says_which_tool_pays():
    rows = [
        EffortRow("a", "done", None, 100.0, {"polygon": 40, "click:superpixel": 2}, None),
        EffortRow("b", "done", None, 80.0, {"polygon": 30}, None),
        EffortRow("c", "done", None, 20.0, {"click:sam": 4, "box:sam": 1, "brush": 1}, None),
        EffortRow("d", "done", None, 30.0, {"click:sam": 6}, None),
        EffortRow("e", "todo", None, 500.0, {"click:sam": 99}, None),  # not done: not counted
        EffortRow("f", "done", None, 0.0, {}, None),  # opened, never edited
    ]
    out = {e["engine"]: e for e in summarize_by_engine(rows)}
    assert list(out) == [MANUAL, "sam", "superpixel"]  # by actions, most first
    assert out[MANUAL]["actions"] == 71 and out[MANUAL]["images_used"] == 3
    assert out[MANUAL]["images_mainly"] == 2 and out[MANUAL]["median_actions_mainly"] == 36
    assert out["sam"]["actions"] == 11 and out["sam"]["images_mainly"] == 2
    assert out["sam"]["median_actions_mainly"] == 6 and out["sam"]["median_seconds_mainly"] == 25.0
    assert out["superpixel"]["images_mainly"] == 0 and out["superpixel"]["median_actions_mainly"] is None
    assert abs(sum(e["share"] for e in out.values()) - 1.0) < 1e-9
    assert summarize_by_engine([]) == []
