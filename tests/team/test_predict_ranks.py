"""Pre-annotation over ranks: 3 CPU ranks under torchrun share the server's work queue; one is killed
mid-run (SIGKILL, no cleanup), torchrun restarts the group, and every image is predicted exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import torch
from PIL import Image

from segstudio.core.project import Project, Status
from segstudio.core.schemes import voc_scheme
from segstudio.ml.models import build_model
from segstudio.ml.weights import save_checkpoint
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project

pytestmark = pytest.mark.usefixtures("one_torch_thread", "offline_downloads")

ARCH = "lraspp_mobilenet_v3_large"
REPO = Path(__file__).resolve().parents[2]


def _folder(tmp_path, count: int) -> Path:
    from skimage import data

    photo = data.astronaut()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(count):  # distinct crops: every file its own content hash
        crop = photo[i * 4 : i * 4 + 240, i * 3 : i * 3 + 320]
        Image.fromarray(crop).save(folder / f"frame_{i:03d}.png")
    return folder


def _checkpoint(tmp_path) -> Path:
    torch.manual_seed(3)
    return save_checkpoint(tmp_path / "tiny.pt", build_model(ARCH, 21).eval(), ARCH, voc_scheme())


def _project(team_db, tmp_path, count: int) -> Path:
    folder = _folder(tmp_path, count)
    Project.open(folder).close()
    create_team_project(folder, team_db.url("lena"))
    return folder


def test_single_process_predicts_every_image_once_then_finds_nothing_left(team_db, tmp_path, capsys):
    from segstudio.cli import main

    folder = _project(team_db, tmp_path, 3)
    checkpoint = _checkpoint(tmp_path)
    args = ["predict", str(folder), "--db", team_db.url("alice"), "--weights", str(checkpoint),
            "--device", "cpu", "--precision", "float32", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "predicted 3 image(s)" in capsys.readouterr().err
    assert main(args) == 0
    assert "predicted 0 image(s)" in capsys.readouterr().err
    with TeamProject.join(folder, team_db.url("bob"), state_dir=tmp_path / "bob") as team:
        rec = team.images()[0]
        assert rec.status == Status.PREDICTED
        prediction = team.load_prediction(rec)
        assert prediction.labels.shape == rec.shape and prediction.confidence is not None


@pytest.mark.slow
def test_three_ranks_under_torchrun_one_killed_every_image_exactly_once(team_db, tmp_path):
    count = 36
    folder = _project(team_db, tmp_path, count)
    checkpoint = _checkpoint(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3",
               "--max-restarts", "1", "-m", "segstudio", "predict", str(folder), "--db", team_db.url("alice"),
               "--weights", str(checkpoint), "--device", "cpu", "--precision", "float32", "--quiet",
               "--claim-size", "2", "--claim-seconds", "6"]  # fmt: skip
    log = tmp_path / "torchrun.log"
    with open(log, "w") as out, psycopg.connect(team_db.url("lena"), autocommit=True) as watch:
        job = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        try:
            killed = None
            deadline = time.monotonic() + 240
            while killed is None and time.monotonic() < deadline and job.poll() is None:
                done = watch.execute("SELECT count(*) FROM segstudio.predictions").fetchone()[0]
                held = watch.execute(
                    "SELECT claim FROM segstudio.predict_queue WHERE done_at IS NULL AND claim IS NOT NULL "
                    "AND expires_at > now() LIMIT 1"
                ).fetchone()
                if done >= 2 and held is not None:
                    pid = int(held[0].split(":")[1])
                    os.kill(pid, signal.SIGKILL)  # mid-batch: its claim stays until it expires
                    killed = (pid, done)
                time.sleep(0.05)
            assert killed is not None, f"no rank was caught mid-run:\n{log.read_text()[-3000:]}"
            assert killed[1] < count
            assert job.wait(timeout=300) == 0, log.read_text()[-3000:]
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        rows = watch.execute("SELECT image_id, times FROM segstudio.predictions ORDER BY image_id").fetchall()
        ids = [r[0] for r in watch.execute("SELECT id FROM segstudio.images ORDER BY id").fetchall()]
        assert [r[0] for r in rows] == ids  # every image predicted
        assert {r[1] for r in rows} == {1}  # each stored exactly once
        assert (
            watch.execute("SELECT count(*) FROM segstudio.predict_queue WHERE done_at IS NULL").fetchone()[0]
            == 0
        )
        statuses = {r[0] for r in watch.execute("SELECT status FROM segstudio.images").fetchall()}
        assert statuses == {"predicted"}


def test_a_rank_whose_claim_expired_cannot_store_over_the_rank_that_took_it_over(team_db, tmp_path):
    from segstudio.team.work_queue import WorkQueue

    folder = _project(team_db, tmp_path, 3)
    with TeamProject.join(folder, team_db.url("alice"), state_dir=tmp_path / "a", heartbeat=False) as alice, \
            TeamProject.join(folder, team_db.url("bob"), state_dir=tmp_path / "b", heartbeat=False) as bob:  # fmt: skip
        slow, fast = WorkQueue(alice, claim_seconds=0.3), WorkQueue(bob, claim_seconds=60)
        assert slow.enqueue() == 3 and fast.enqueue() == 0
        claimed = slow.claim(2)
        assert [r.rel_path for r in claimed] == ["frame_000.png", "frame_001.png"]
        assert [r.rel_path for r in fast.claim(5)] == ["frame_002.png"]  # SKIP LOCKED: never the same rows
        time.sleep(0.5)  # the slow rank's claim runs out
        taken = fast.claim(5)
        assert [r.id for r in taken] == [r.id for r in claimed]
        rec = claimed[0]
        labels = np.zeros(rec.shape, np.uint8)
        blobs = alice.prediction_blobs(rec, labels, np.full(rec.shape, 9, np.uint8), None)
        assert slow.finish(rec, blobs, "slow") is False  # refused: bob holds it now
        assert fast.finish(rec, bob.prediction_blobs(rec, labels + 1, labels + 200, None), "fast") is True
        assert fast.finish(rec, blobs, "again") is False  # done: never stored twice
        assert bob.load_prediction(rec).labels.max() == 1
        assert fast.outstanding() == 2
