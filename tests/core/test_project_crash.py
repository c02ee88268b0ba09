"""Crash safety: a writer SIGKILLed at random moments never leaves a torn mask or a broken database.

A child process saves masks, predictions and DB rows in a loop; iteration n writes pattern n to
every image and then commits `counter = n`. After each kill, every file must decode and hold the
pattern of the last committed iteration or of the one in flight (old or new content, nothing
else), the database must pass `PRAGMA integrity_check`, and the project must reopen (the lock
dies with the process).
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.masks import load_confidence, load_mask
from segstudio.core.project import STATE_DIR_NAME, Project

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL (POSIX)")

TRIALS = 30
SHAPE = (48, 64)


def _pattern(n: int, image_id: int) -> np.ndarray:
    """Distinct content per (iteration, image): a value plus a stripe at an iteration-dependent row."""
    mask = np.full(SHAPE, (n * 7 + image_id) % 21, dtype=np.uint8)
    mask[n % SHAPE[0]] = 255
    return mask


def _confidence(n: int, image_id: int) -> np.ndarray:
    return np.full(SHAPE, (n * 13 + image_id) % 256, dtype=np.uint8)


def _writer(folder: Path, start: int, report_w: int) -> None:
    """Child body: open the project, say "r", then write forever, saying "c" after each commit."""
    project = Project.open(folder)
    records = project.images()
    os.write(report_w, b"r")
    n = start
    while True:
        for rec in records:
            project.save_prediction(rec, _pattern(n, rec.id), _confidence(n, rec.id), f"v{n}")
            project.save_mask(rec, _pattern(n, rec.id))
        project.set_setting("counter", n)
        os.write(report_w, b"c")
        n += 1


def _read_bytes(fd: int, count: int, timeout: float = 120.0) -> bytes:
    """Read exactly `count` bytes from a pipe, failing (not hanging) if the child stops talking."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < count:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "the writer child stopped reporting progress"
        chunk = os.read(fd, count - len(data))
        assert chunk, "the writer child exited early"
        data += chunk
    return data


def _check_after_kill(folder: Path) -> int:
    state = folder / STATE_DIR_NAME
    conn = sqlite3.connect(state / "project.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        row = conn.execute("SELECT value FROM settings WHERE key = 'counter'").fetchone()
    finally:
        conn.close()
    committed = -1 if row is None else int(row[0])
    with Project.open(folder) as project:  # the dead child's lock is gone
        for rec in project.images():
            allowed = [committed, committed + 1]
            mask_path = project.mask_path(rec)
            if mask_path.exists():
                mask = load_mask(mask_path, SHAPE)  # decodes: never torn
                assert any(np.array_equal(mask, _pattern(n, rec.id)) for n in allowed if n >= 0), (
                    f"mask of image {rec.id} is neither iteration {committed} nor {committed + 1}"
                )
            else:
                assert committed == -1
            labels = load_mask(project.prediction_path(rec), SHAPE) if project.has_prediction(rec) else None
            if labels is not None:
                which = [n for n in allowed if n >= 0 and np.array_equal(labels, _pattern(n, rec.id))]
                assert which, (
                    f"prediction of image {rec.id} is neither iteration {committed} nor {committed + 1}"
                )
                # The confidence file is written before the labels: it is at least as new as they are.
                conf = load_confidence(project.confidence_path(rec), SHAPE)
                assert any(np.array_equal(conf, _confidence(n, rec.id)) for n in allowed if n >= which[0])
        leftovers = [p for p in state.rglob("*") if p.name.endswith(".tmp-segstudio")]
        assert leftovers == []  # temp files of the killed writer are cleaned on open
        assert project.get_setting("counter", -1) == committed
    return committed


def test_sigkill_during_writes_never_corrupts(tmp_path: Path, write_image) -> None:
    folder = tmp_path / "crash test"
    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, SHAPE + (3,), dtype=np.uint8))
    Project.open(folder).close()
    chooser = random.Random(1234)
    committed = -1
    deadline = time.monotonic() + 45.0  # keeps the test bounded on a very slow machine
    for trial in range(TRIALS):
        if trial >= 12 and time.monotonic() > deadline:
            break
        report_r, report_w = os.pipe()
        start = committed + 1
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(report_r)
                _writer(folder, start, report_w)
            finally:
                os._exit(1)
        os.close(report_w)
        try:
            assert _read_bytes(report_r, 1) == b"r", "writer child failed to open the project"
            # Let 0-2 iterations commit, then kill at a random moment inside the next ones.
            waited = chooser.randint(0, 2)
            assert _read_bytes(report_r, waited) == b"c" * waited
            time.sleep(chooser.uniform(0.0, 0.06))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(report_r)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the writer died on its own"
        new_committed = _check_after_kill(folder)
        # Every iteration the child reported as committed survived the kill.
        assert new_committed >= start + waited - 1
        committed = new_committed
    print(f"{trial + 1} kills, {committed + 1} iterations committed", file=sys.stderr)


def _opener(folder: Path) -> None:
    Project.open(folder).close()


def test_sigkill_during_first_scan_leaves_a_reopenable_project(tmp_path: Path, write_image) -> None:
    """Killed while hashing and inserting hundreds of new files: the next open finishes the job."""
    folder = tmp_path / "scan"
    rng = np.random.default_rng(5)
    for i in range(3):
        write_image(folder / f"keep{i}.png", rng.integers(0, 256, SHAPE + (3,), dtype=np.uint8))
    with Project.open(folder) as project:
        keep = project.images()[0]
        project.save_mask(keep, _pattern(0, keep.id))
    chooser = random.Random(99)
    for trial in range(8):
        for i in range(150):
            write_image(
                folder / f"batch{trial}" / f"{i}.png", np.full((4, 4, 3), (trial, i, 3), dtype=np.uint8)
            )
        pid = os.fork()
        if pid == 0:
            try:
                _opener(folder)
            finally:
                os._exit(0)
        time.sleep(chooser.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        conn = sqlite3.connect(folder / STATE_DIR_NAME / "project.db")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
        with Project.open(folder) as project:
            assert len(project) == 3 + 150 * (
                trial + 1
            )  # either the child's insert committed, or this open did it
            assert np.array_equal(project.load_mask(project.get_by_id(keep.id)), _pattern(0, keep.id))
