"""Saves while the team server is away: queued durably in the member's cache, sent on reconnect, shown
as pending until they land; a queued save that turns out stale is never applied over someone's work."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.project import Status
from segstudio.team.blobs import decode_png
from segstudio.team.errors import TeamError
from segstudio.team.project import TeamProject
from tests.team.conftest import mask_of


def _join(team, folder, user, tmp_path, **kwargs) -> TeamProject:
    return TeamProject.join(folder, team.url(user), state_dir=tmp_path / user, heartbeat=False, **kwargs)


def test_a_save_during_an_outage_is_queued_durably_and_lands_after_the_restart(team, image_folder, tmp_path):
    alice = _join(team, image_folder, "alice", tmp_path)
    try:
        rec = alice.get("a_cat.png")
        alice.load_mask(rec)
        team.server.stop("fast")
        try:
            saved = alice.save_mask(rec, mask_of(3), Status.DONE)  # no error, no wait: queued
            assert saved.status == Status.DONE
            alice.save_mask(rec, mask_of(4), Status.DONE)  # a second save of it replaces the queued pixels
            assert set(alice.pending_saves()) == {"a_cat.png"}
            queued = alice.outbox.get(rec.id)
            assert queued is not None and queued.base is None  # still the version alice started from
            assert np.array_equal(decode_png(queued.png, rec.shape, "queued"), mask_of(4))
            with pytest.raises(TeamError):
                alice.flush_pending()  # still away: the entry stays
            assert set(alice.pending_saves()) == {"a_cat.png"}
        finally:
            alice.close()  # the member quits while the server is down: the queue is on disk
            team.server.start()
    finally:
        alice.close()
    with _join(team, image_folder, "alice", tmp_path) as again:  # joining sends what is queued
        assert again.pending_saves() == {}
        assert again.take_conflicts() == []
    with _join(team, image_folder, "lena", tmp_path) as lena:
        landed = lena.get("a_cat.png")
        assert landed.status == Status.DONE
        assert np.array_equal(lena.load_mask(landed), mask_of(4))
        history = lena.mask_history(landed)
        assert [v.author for v in history] == ["alice"] and history[0].parent is None


def test_a_queued_save_made_stale_by_another_member_is_kept_locally_not_applied(team, image_folder, tmp_path):
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        rec = alice.get("b_coffee.png")
        alice.load_mask(rec)
        bob.load_mask(rec)
        team.server.stop("fast")
        try:
            alice.save_mask(rec, mask_of(5))
            assert "b_coffee.png" in alice.pending_saves()
        finally:
            team.server.start()
        bob.save_mask(rec, mask_of(7))  # bob reached the server first
        assert alice.flush_pending() == 0
        assert alice.pending_saves() == {}
        conflicts = alice.take_conflicts()
        assert len(conflicts) == 1 and conflicts[0].rel_path == "b_coffee.png"
        assert "bob" in conflicts[0].message and "not applied" in conflicts[0].message
        kept = conflicts[0].kept_at
        assert kept is not None and kept.is_file() and kept.is_relative_to(tmp_path / "alice")
        assert np.array_equal(decode_png(kept.read_bytes(), rec.shape, "kept"), mask_of(5))
        assert alice.take_conflicts() == []  # told once
        assert np.array_equal(alice.load_mask(rec), mask_of(7))  # bob's work stands
        assert [v.author for v in alice.mask_history(rec)] == ["bob"]


def test_a_queued_save_is_retried_in_the_background_and_load_shows_it_meanwhile(
    team, image_folder, tmp_path, monkeypatch
):
    import segstudio.team.editing as editing

    monkeypatch.setattr(editing, "RETRY_SECONDS", 0.2)
    with TeamProject.join(image_folder, team.url("alice"), state_dir=tmp_path / "alice") as alice:
        rec = alice.get("c_astronaut.png")
        alice.load_mask(rec)
        team.server.stop("fast")
        try:
            alice.save_mask(rec, mask_of(2))
        finally:
            team.server.start()
        import time

        deadline = time.monotonic() + 20
        while alice.pending_saves() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alice.pending_saves() == {}
        assert np.array_equal(alice.load_mask(rec), mask_of(2))


def test_status_and_split_changes_while_away_are_queued_in_order_and_land_after_the_restart(
    team, image_folder, tmp_path
):
    alice = _join(team, image_folder, "alice", tmp_path)
    lena = _join(team, image_folder, "lena", tmp_path)
    try:
        rec, other = alice.get("a_cat.png"), alice.get("b_coffee.png")
        alice.load_mask(rec)
        alice.load_mask(other)
        lead_view = lena.get("c_astronaut.png")
        lena.load_mask(lead_view)
        alice.images()  # the window's list, as last read (shown while the server is away)
        team.server.stop("fast")
        try:
            alice.save_mask(rec, mask_of(3), Status.IN_PROGRESS)  # queued
            skipped = alice.set_status(rec, Status.SKIPPED)  # after it: no error, no wait
            assert skipped.status == Status.SKIPPED
            assert alice.set_status(other, Status.DONE).status == Status.DONE  # nothing queued before it
            assert lena.set_split(lead_view, "val").split == "val"
            assert set(alice.pending_saves()) == {"a_cat.png", "b_coffee.png"}
            shown = {r.rel_path: r.status for r in alice.images()}  # the window shows what alice did
            assert shown["a_cat.png"] == Status.SKIPPED and shown["b_coffee.png"] == Status.DONE
            assert [r.rel_path for r in alice.images(status=Status.SKIPPED)] == ["a_cat.png"]
            assert np.array_equal(alice.load_mask(rec), mask_of(3))  # the queued pixels
            with pytest.raises(TeamError, match="lost the connection"):
                alice.review(other, True)  # reviews are not queued (a verdict on what the server holds)
        finally:
            alice.close()  # alice quits while the server is down: her queue is on disk
            team.server.start()
        assert lena.flush_pending() == 1
    finally:
        alice.close()
        lena.close()
    with _join(team, image_folder, "alice", tmp_path) as again:  # joining sends what is queued, in order
        assert again.pending_saves() == {} and again.take_conflicts() == []
    with _join(team, image_folder, "rita", tmp_path) as rita:
        landed = rita.get("a_cat.png")
        assert landed.status == Status.SKIPPED  # the status change came after the save, as made
        assert np.array_equal(rita.load_mask(landed), mask_of(3))
        assert [(v.author, v.status) for v in rita.mask_history(landed)] == [("alice", "in_progress")]
        assert rita.get("b_coffee.png").status == Status.DONE
        assert rita.get("c_astronaut.png").split == "val"


def test_a_queued_status_change_is_refused_when_someone_saved_since_and_waits_for_a_lease(
    team, image_folder, tmp_path
):
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        stale, leased = alice.get("b_coffee.png"), alice.get("c_astronaut.png")
        for rec in (stale, leased):
            alice.load_mask(rec)
            bob.load_mask(rec)
        team.server.stop("fast")
        try:
            alice.set_status(stale, Status.DONE)
            alice.set_status(leased, Status.SKIPPED)
        finally:
            team.server.start()
        bob.save_mask(stale, mask_of(7))  # bob reached the server first: alice's "done" was about older work
        bob.take_lease(leased)  # and bob is editing the other one
        assert alice.flush_pending() == 0
        conflicts = alice.take_conflicts()
        assert [c.rel_path for c in conflicts] == ["b_coffee.png"]
        assert "status change to 'done'" in conflicts[0].message and "bob" in conflicts[0].message
        assert "not applied" in conflicts[0].message and conflicts[0].kept_at is None
        assert set(alice.pending_saves()) == {"c_astronaut.png"}  # waits for bob's lease, never dropped
        assert bob.get("b_coffee.png").status == Status.IN_PROGRESS  # bob's save stands
        assert bob.get("c_astronaut.png").status != Status.SKIPPED
        bob.release_lease(leased)
        assert alice.flush_pending() == 1
        assert alice.pending_saves() == {} and alice.take_conflicts() == []
        assert bob.get("c_astronaut.png").status == Status.SKIPPED


def test_a_queued_save_and_status_on_an_image_assigned_to_another_are_reported_not_applied(
    team, image_folder, tmp_path
):
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "lena", tmp_path) as lena,
    ):
        rec = alice.get("sub/d_rocket.png")
        alice.load_mask(rec)
        team.server.stop("fast")
        try:
            alice.save_mask(rec, mask_of(9))
            alice.set_status(rec, Status.DONE)
            alice.set_split(rec, "val")  # annotators may not move images between splits
        finally:
            team.server.start()
        lena.assign([lena.get("sub/d_rocket.png")], ["bob"])
        assert alice.flush_pending() == 0
        (conflict,) = alice.take_conflicts()
        assert "save and status change to 'done' and split change to 'val'" in conflict.message
        assert "assigned to bob" in conflict.message
        assert conflict.kept_at is not None
        assert np.array_equal(decode_png(conflict.kept_at.read_bytes(), rec.shape, "kept"), mask_of(9))
        after = lena.get("sub/d_rocket.png")
        assert lena.mask_history(after) == [] and after.status != Status.DONE and after.split == rec.split
        assert alice.pending_saves() == {}


def test_a_consensus_annotators_status_change_while_away_lands_on_their_branch(
    team, image_folder, tmp_path, capsys
):
    from tests.team.test_consensus import _annotate, _consensus_on

    _consensus_on(team, image_folder, capsys, "a_cat.png")  # alice annotates branch A
    with _join(team, image_folder, "alice", tmp_path) as alice:
        _annotate(alice, "a_cat.png", mask_of(2), Status.IN_PROGRESS)
        rec = alice.get("a_cat.png")
        alice.images()
        team.server.stop("fast")
        try:
            assert alice.set_status(rec, Status.SKIPPED).status == Status.SKIPPED  # queued, no error
            assert alice.get("a_cat.png").status == Status.SKIPPED
        finally:
            team.server.start()
        assert alice.flush_pending() == 1 and alice.take_conflicts() == []
        history = alice.mask_history(rec)
        assert [(v.branch, v.status) for v in history] == [("A", "in_progress"), ("A", "skipped")]
        assert np.array_equal(alice.load_mask(rec), mask_of(2)) and alice._head(rec.id) is None
        assert alice.get("a_cat.png").status == Status.SKIPPED  # her branch's status, from the server
    with _join(team, image_folder, "lena", tmp_path) as lena:
        assert lena.get("a_cat.png").status != Status.SKIPPED  # the main line is untouched


def test_a_save_whose_answer_was_lost_after_the_commit_is_not_refused_as_stale(
    team, image_folder, tmp_path, monkeypatch
):
    """The link drops after the server committed the save but before the client heard: the retry finds
    the member's own save at the head and takes it as done, instead of 'saved by alice after you opened it'."""
    import segstudio.team.editing as editing

    real = editing.commit_then_read
    dropped: list[int] = []

    def commit_then_lose_the_link(conn, *args):
        result = real(conn, *args)
        if not dropped:  # once: the commit is on the server, the answer never arrives
            dropped.append(conn.info.backend_pid)
            with team.server.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            conn.execute("SELECT 1")  # the client notices the dead link here (OperationalError)
        return result

    alice = _join(team, image_folder, "alice", tmp_path)
    try:
        rec = alice.get("a_cat.png")
        alice.load_mask(rec)
        monkeypatch.setattr(editing, "commit_then_read", commit_then_lose_the_link)
        saved = alice.save_mask(rec, mask_of(3), Status.DONE)
        assert dropped, "the link was not cut"
        assert saved.status == Status.DONE
        assert alice.pending_saves() == {} and alice.take_conflicts() == []
        alice.save_mask(rec, mask_of(5), Status.DONE)  # the next save builds on the landed one
    finally:
        alice.close()
    with _join(team, image_folder, "lena", tmp_path) as lena:
        history = lena.mask_history(lena.get("a_cat.png"))
        assert [v.author for v in history] == ["alice", "alice"]
        assert history[0].parent is None and history[1].parent == history[0].id
        assert np.array_equal(lena.load_mask(lena.get("a_cat.png")), mask_of(5))


def test_an_identical_save_by_someone_else_is_still_refused_as_stale(team, image_folder, tmp_path):
    """Only the member's own save counts as 'already landed': the same pixels saved by another member
    on the same base are someone else's version, and the late save is refused."""
    from segstudio.team.errors import StaleSaveError

    alice = _join(team, image_folder, "alice", tmp_path)
    lena = _join(team, image_folder, "lena", tmp_path)
    try:
        rec = alice.get("a_cat.png")
        alice.load_mask(rec)
        lena.load_mask(lena.get("a_cat.png"))
        lena.save_mask(lena.get("a_cat.png"), mask_of(3), Status.DONE)
        with pytest.raises(StaleSaveError, match="lena"):
            alice.save_mask(rec, mask_of(3), Status.DONE)
    finally:
        alice.close()
        lena.close()
