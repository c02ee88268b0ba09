"""What long commands show: a human line at a terminal, JSON lines with --json or in a pipe, no bar in pipes."""

from __future__ import annotations

import argparse
import io
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from segstudio.commands.console import TrainConsole, task_progress, train_progress, wants_json
from segstudio.core.durations import format_duration
from segstudio.core.task_handle import ConsoleProgress, NullTask


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"quiet": False, "progress": False, "json": False, **kw})


def test_bar_only_at_a_terminal_or_when_asked():
    assert isinstance(task_progress("x", _args(), stream=io.StringIO()), NullTask)
    assert not isinstance(task_progress("x", _args(), stream=io.StringIO()), ConsoleProgress)
    assert isinstance(task_progress("x", _args(), stream=FakeTerminal()), ConsoleProgress)
    assert not isinstance(task_progress("x", _args(quiet=True), stream=FakeTerminal()), ConsoleProgress)
    log = io.StringIO()
    bar = task_progress("export voc", _args(progress=True), stream=log)
    for done in range(101):
        bar.set_progress(done, 100)
    text = log.getvalue()
    assert "\r" not in text  # a log gets plain lines, no redraws
    assert text.splitlines()[0].startswith("export voc [") and "100/100" in text.splitlines()[-1]
    assert len(text.splitlines()) <= 3  # at most one line per 5 s, plus the first and the last


def test_json_when_asked_or_when_stdout_is_a_pipe():
    assert wants_json(_args(json=True), stdout=FakeTerminal())
    assert wants_json(_args(), stdout=io.StringIO())
    assert not wants_json(_args(), stdout=FakeTerminal())


def test_train_console_renders_the_protocol_for_people():
    screen = FakeTerminal()
    console = TrainConsole(screen)
    events = [
        {
            "event": "start",
            "epochs": 3,
            "iters_per_epoch": 10,
            "train_images": 8,
            "val_images": 2,
            "device": "cpu",
            "world_size": 1,
            "arch": "lraspp",
            "base": "scratch",
            "resumed_from": None,
        },
        {"event": "val", "epoch": 0, "miou": 0.1, "best_miou": None, "improved": False},
        {
            "event": "batch",
            "epoch": 1,
            "iter": 5,
            "iters": 10,
            "loss": 0.75,
            "lr": 0.01,
            "images_per_s": 12.5,
            "step_s": 0.3,
            "eta_s": 252,
        },
        {"event": "epoch", "epoch": 1, "loss": 0.7, "lr": 0.01, "time_s": 6.0, "eta_s": 12},
        {"event": "val", "epoch": 1, "miou": 0.42, "best_miou": 0.42, "improved": True},
        {
            "event": "done",
            "reason": "completed",
            "checkpoint": "x",
            "version": "v1",
            "best_miou": 0.42,
            "baseline_miou": 0.1,
            "best_epoch": 1,
            "epochs_run": 1,
        },
    ]
    for event in events:
        console.handle(event)
    text = screen.getvalue()
    assert "epoch 1/3  step 5/10  loss 0.7500  val mIoU 10.0%  12.5 img/s  ETA 4m 12s" in text
    assert (
        "epoch 1/3  loss 0.7000  val mIoU 42.0% (best 42.0%)  *new best*  12.5 img/s  6s/epoch  ETA 12s"
        in text
    )
    assert "val mIoU 10.0% -> 42.0% at epoch 1" in text
    assert "{" not in text
    log = io.StringIO()
    plain = TrainConsole(log)
    for event in events:
        plain.handle(event)
    assert "\r" not in log.getvalue() and "step 5/10" not in log.getvalue()  # one line per epoch in a log
    assert format_duration(3725) == "1h 02m" and format_duration(None) == "?"


def test_train_progress_writer_records_events_and_prints_no_json(capsys):
    screen, human = FakeTerminal(), io.StringIO()
    writer = train_progress(_args(), enabled=True, stream=human, stdout=screen)
    writer.emit("warning", message="few images")
    assert writer.events == [{"event": "warning", "message": "few images"}]
    assert screen.getvalue() == "" and human.getvalue() == "warning: few images\n"
    json_writer = train_progress(_args(json=True), enabled=True, stdout=screen)
    json_writer.emit("warning", message="hi")
    assert json.loads(screen.getvalue()) == {"event": "warning", "message": "hi"}
    piped = train_progress(_args(), enabled=True)  # pytest's stdout is not a terminal: JSON, as before
    piped.emit("warning", message="piped")
    assert json.loads(capsys.readouterr().out) == {"event": "warning", "message": "piped"}


@pytest.mark.slow
def test_train_at_a_real_terminal_shows_human_progress_and_json_only_with_flag(tmp_path, one_torch_thread):
    """The trainer under a pseudo-terminal (what a user sees), then with --json (what the GUI reads)."""
    from segstudio.ml.manifest import BaseSpec
    from segstudio.ml.synthetic import write_shapes_manifest

    settings = {
        "batch": 4,
        "crop": 48,
        "workers": 0,
        "min_iters_per_epoch": 3,
        "device": "cpu",
        "epochs": 2,
        "lr": 0.02,
        "patience": 0,
    }
    manifest = write_shapes_manifest(
        tmp_path,
        train=6,
        val=2,
        size=48,
        arch="lraspp_mobilenet_v3_large",
        base=BaseSpec("scratch"),
        version="v1",
        settings=settings,
    )
    path = manifest.save(tmp_path / "manifest.json")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "segstudio", "train", "--manifest", str(path)]
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(timeout=60) == 0, screen.decode(errors="replace")[-2000:]
    text = screen.decode(errors="replace")
    assert '{"event"' not in text
    assert "training lraspp_mobilenet_v3_large on cpu" in text
    assert "epoch 2/2  loss" in text and "val mIoU" in text and "img/s" in text and "ETA" in text
    assert "finished (completed) after 2 epoch(s)" in text
    piped = subprocess.run(
        [*command[:-2], "--manifest", str(manifest.save(tmp_path / "m2.json")), "--json", "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert piped.returncode == 0, piped.stderr[-2000:]
    events = [json.loads(line) for line in piped.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
