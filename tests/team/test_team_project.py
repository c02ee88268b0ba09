"""TeamProject as members use it: leases that expire, heartbeats, versions and roll-back, review with
comments, effort per member, a server restart mid-session, a client killed mid-save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.project import Status
from segstudio.team.blobs import decode_png
from segstudio.team.errors import LeaseError
from segstudio.team.project import TeamProject
from tests.team.conftest import mask_of

REPO = Path(__file__).resolve().parents[2]


def _join(team, folder, user, tmp_path, **kwargs) -> TeamProject:
    return TeamProject.join(folder, team.url(user), state_dir=tmp_path / user, **kwargs)


def test_a_lease_expires_without_heartbeat_and_lives_on_with_one(team, image_folder, tmp_path):
    with _join(team, image_folder, "alice", tmp_path, heartbeat=False) as alice, \
            _join(team, image_folder, "bob", tmp_path) as bob:  # fmt: skip
        rec, other = alice.get("a_cat.png"), alice.get("b_coffee.png")
        alice.take_lease(rec, seconds=1.0)
        alice.take_lease(other, seconds=1.0)
        assert alice.heartbeat(seconds=30.0) == 2  # renewed: survives the 1 s
        alice.release_lease(other)
        time.sleep(1.3)
        with pytest.raises(LeaseError, match="being edited by alice"):
            bob.take_lease(rec)
        bob.take_lease(other)
        alice.take_lease(rec, seconds=0.5)  # a client that crashed: no heartbeat comes
        time.sleep(0.8)
        bob.take_lease(rec)  # expired: free for the next member
        assert bob.lease_holder(rec) == "bob"
        assert alice.heartbeat() == 0  # alice's client learns it lost it


def test_close_gives_the_leases_back(team, image_folder, tmp_path):
    alice = _join(team, image_folder, "alice", tmp_path)
    rec = alice.get("a_cat.png")
    alice.take_lease(rec)
    alice.close()
    with _join(team, image_folder, "bob", tmp_path) as bob:
        assert bob.lease_holder(rec) is None


def test_every_version_is_kept_and_any_can_be_restored(team, image_folder, tmp_path):
    with _join(team, image_folder, "alice", tmp_path) as alice:
        rec = alice.get("c_astronaut.png")
        alice.take_lease(rec)
        for value in (1, 2, 3):
            alice.save_mask(rec, mask_of(value))
        alice.delete_mask(rec)
        assert alice.load_mask(rec) is None and not alice.has_mask(rec)
        history = alice.mask_history(rec)
        assert [v.removed for v in history] == [False, False, False, True]
        assert [v.parent for v in history] == [None] + [v.id for v in history[:-1]]
        alice.restore_mask_version(rec, history[1].id)
        assert np.array_equal(alice.load_mask(rec), mask_of(2))
        assert len(alice.mask_history(rec)) == 5


def test_review_rejects_with_a_comment_the_annotator_sees_and_a_new_save_clears_it(
    team, image_folder, tmp_path
):
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "rita", tmp_path) as rita,
    ):
        rec = alice.get("a_cat.png")
        alice.load_mask(rec)
        alice.save_mask(rec, mask_of(1), Status.DONE)
        rita.review(rec, accepted=False, comment="the tail is missing")
        seen = alice.review_of(rec)
        assert (seen.verdict, seen.comment, seen.reviewer) == ("rejected", "the tail is missing", "rita")
        alice.save_mask(rec, mask_of(2), Status.DONE)
        assert alice.review_of(rec) is None  # the verdict was on the old version
        assert rita.review(rec, accepted=True).verdict == "accepted"


def test_effort_is_kept_per_member_and_summed_per_image(team, image_folder, tmp_path):
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        rec = alice.get("a_cat.png")
        alice.add_effort(rec, 5.0, {"brush": 2})
        alice.add_effort(rec, 1.0, {"brush": 1, "fill": 1}, 0.3)
        bob.add_effort(rec, 2.0, {"polygon": 4})
        per_member = {m: (r.seconds, r.actions) for m, r in bob.effort_by_member()}
        assert per_member == {"alice": (6.0, {"brush": 3, "fill": 1}), "bob": (2.0, {"polygon": 4})}
        (row,) = alice.effort_rows()
        assert (row.seconds, row.actions, row.changed_fraction) == (
            8.0,
            {"brush": 3, "fill": 1, "polygon": 4},
            0.3,
        )


def test_the_client_reconnects_after_a_server_restart(team, image_folder, tmp_path):
    with _join(team, image_folder, "alice", tmp_path) as alice:
        rec = alice.get("a_cat.png")
        alice.load_mask(rec)
        team.server.stop("fast")
        team.server.start()
        saved = alice.save_mask(rec, mask_of(6))  # the dropped link is reopened once, transparently
        assert saved.status == Status.IN_PROGRESS
        assert np.array_equal(alice.load_mask(rec), mask_of(6))


def test_a_server_that_went_away_is_a_clear_error_not_a_traceback(team, image_folder, tmp_path):
    from segstudio.team.errors import TeamError

    alice = _join(team, image_folder, "alice", tmp_path)
    try:
        rec = alice.get("a_cat.png")
        team.server.stop("fast")
        try:
            with pytest.raises(TeamError, match=r"lost the connection|no PostgreSQL server answers"):
                alice.take_lease(rec)  # saves, statuses, splits are queued instead (test_offline_saves.py)
        finally:
            team.server.start()
    finally:
        alice.close()


_SAVER = """
import sys, numpy as np
from segstudio.team.project import TeamProject
folder, url, state = sys.argv[1:4]
team = TeamProject.join(folder, url, state_dir=state, heartbeat=False)
rec = team.get("b_coffee.png")
rng = np.random.default_rng()
print("ready", flush=True)
while True:
    team.load_mask(rec)
    team.save_mask(rec, rng.integers(0, 12, rec.shape, dtype=np.uint8))
"""


def test_a_client_killed_mid_save_never_leaves_a_half_written_mask(team, image_folder, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for trial in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(image_folder), team.url("alice"), str(tmp_path / "saver")],
            stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.02 * trial)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    with team.raw("lena") as lena:
        rows = lena.execute(
            "SELECT v.id, v.png, v.parent FROM segstudio.mask_versions v JOIN segstudio.images i ON i.id = v.image_id "
            "WHERE i.rel_path = 'b_coffee.png' ORDER BY v.id"
        ).fetchall()
        head = lena.execute(
            "SELECT mask_head FROM segstudio.images WHERE rel_path = 'b_coffee.png'"
        ).fetchone()[0]
    assert len(rows) >= 12 and head == rows[-1][0]
    for version_id, png, _parent in rows:  # every stored version complete, the chain unbroken
        assert decode_png(png, (32, 48), f"version {version_id}").shape == (32, 48)
    assert [r[2] for r in rows[1:]] == [r[0] for r in rows[:-1]]


def test_a_change_listener_hears_saves_leases_and_reviews_at_once(team, image_folder, tmp_path):
    import threading

    from segstudio.team.live import ChangeListener

    heard: list[tuple[str, int]] = []
    arrived = threading.Event()
    listener = ChangeListener(team.url("rita"), lambda t, i: (heard.append((t, i)), arrived.set())).start()
    try:
        assert listener.listening.wait(10)
        with _join(team, image_folder, "alice", tmp_path, heartbeat=False) as alice:
            rec = alice.get("a_cat.png")
            alice.take_lease(rec)
            alice.save_mask(rec, mask_of(3))
            deadline = time.monotonic() + 5
            while {t for t, _ in heard} < {"leases", "mask_versions"} and time.monotonic() < deadline:
                time.sleep(0.02)
        assert ("leases", rec.id) in heard and ("mask_versions", rec.id) in heard
    finally:
        listener.stop()


def test_saves_and_leases_are_announced_once_after_commit_and_psql_writes_still_by_the_trigger(
    team, image_folder, tmp_path
):
    """Schema 4: a SegStudio client NOTIFYs its own saves and leases after they commit (no NOTIFY lock held
    across the save's fsync); every other writer is still announced by the trigger. Each change once."""
    import threading

    from segstudio.team.live import ChangeListener

    heard: list[tuple[str, int]] = []
    lock = threading.Lock()

    def hear(table: str, image: int) -> None:
        with lock:
            heard.append((table, image))

    def wait_for(wanted: list[tuple[str, int]]) -> list[tuple[str, int]]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(heard.count(w) >= wanted.count(w) for w in wanted):
            time.sleep(0.02)
        time.sleep(0.3)  # a duplicate would arrive within this
        with lock:
            got, heard[:] = list(heard), []
        return got

    listener = ChangeListener(team.url("rita"), hear).start()
    try:
        assert listener.listening.wait(10)
        with _join(team, image_folder, "alice", tmp_path, heartbeat=False) as alice:
            rec = alice.get("a_cat.png")
            alice.take_lease(rec)
            alice.save_mask(rec, mask_of(3))
            alice.save_mask(rec, mask_of(4))
            alice.release_lease(rec)
            got = wait_for([("leases", rec.id), ("mask_versions", rec.id), ("mask_versions", rec.id)])
            assert got == [
                ("leases", rec.id),
                ("mask_versions", rec.id),
                ("mask_versions", rec.id),
                ("leases", rec.id),
            ]
            other = alice.get("b_coffee.png")
            alice.take_lease(other)
        assert wait_for([("leases", other.id), ("leases", other.id)]) == [("leases", other.id)] * 2  # close
        with team.raw("bob") as psql:  # a writer that is not a SegStudio client: the trigger announces it
            head = psql.execute("SELECT mask_head FROM segstudio.images WHERE id = %s", (rec.id,)).fetchone()[
                0
            ]
            psql.execute(
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, %s, NULL, 'new')",
                (rec.id, head),
            )
        assert wait_for([("mask_versions", rec.id)]) == [("mask_versions", rec.id)]
    finally:
        listener.stop()
