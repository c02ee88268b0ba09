"""The team's work queue and review: a lead assigns (round robin, by folder, least confidence first), the
server refuses others' saves on an assigned image, each member's queue, rejected images with the
reviewer's comment in `info`, export of accepted images only, and the effort report."""

from __future__ import annotations

import json

import pytest

from segstudio.cli import main
from segstudio.core.project import Status
from segstudio.core.store_records import ImageRecord
from segstudio.team.assignments import plan_assignment
from segstudio.team.errors import TeamPermissionError
from segstudio.team.project import TeamProject
from tests.team.conftest import mask_of


def _rec(i: int, path: str, confidence: float | None = None) -> ImageRecord:
    return ImageRecord(i, path, 48, 32, "h", Status.NEW, "train", None, confidence, None, 0.0, 0.0)


def test_the_plans_deal_in_order_keep_folders_together_and_put_the_least_confident_first():
    recs = [_rec(1, "a.png", 0.9), _rec(2, "b.png", 0.2), _rec(3, "x/c.png", 0.5), _rec(4, "x/d.png"),
            _rec(5, "x/e.png", 0.1)]  # fmt: skip
    rr = plan_assignment(recs, ["alice", "bob"], "round-robin")
    assert [(r.rel_path, m, p) for r, m, p in rr] == [
        ("a.png", "alice", 0), ("b.png", "bob", 0), ("x/c.png", "alice", 1), ("x/d.png", "bob", 1),
        ("x/e.png", "alice", 2)]  # fmt: skip
    folder = {r.rel_path: m for r, m, _ in plan_assignment(recs, ["alice", "bob"], "folder")}
    assert folder == {
        "x/c.png": "alice",
        "x/d.png": "alice",
        "x/e.png": "alice",
        "a.png": "bob",
        "b.png": "bob",
    }
    conf = plan_assignment(recs, ["alice", "bob"], "confidence")
    assert [r.rel_path for r, _, _ in conf] == ["x/e.png", "b.png", "x/c.png", "a.png", "x/d.png"]
    assert [m for _, m, _ in conf] == ["alice", "bob", "alice", "bob", "alice"]


def _join(team, folder, user, tmp_path) -> TeamProject:
    return TeamProject.join(folder, team.url(user), state_dir=tmp_path / user, heartbeat=False)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_assign_from_the_cli_fills_each_queue_and_the_server_enforces_it(
    team, image_folder, tmp_path, capsys
):
    code, out, _ = _cli(capsys, "team", "assign", str(image_folder), "--db", team.url("lena"),
                        "--to", "alice,bob", "--by", "round-robin")  # fmt: skip
    assert code == 0 and "alice: 2 image(s)" in out and "bob: 2 image(s)" in out
    code, _, err = _cli(
        capsys, "team", "assign", str(image_folder), "--db", team.url("alice"), "--to", "alice"
    )
    assert code == 0  # nothing left unassigned: nothing to write
    code, _, err = _cli(capsys, "team", "assign", str(image_folder), "a_cat.png", "--db", team.url("alice"),
                        "--to", "alice")  # fmt: skip
    assert code == 2 and "may not assign" in err  # annotators do not assign
    code, _, err = _cli(
        capsys, "team", "assign", str(image_folder), "--db", team.url("lena"), "--to", "nobody"
    )
    assert code == 2 and "not members" in err
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        queue = [r.rel_path for r in alice.my_queue()]
        assert queue == ["a_cat.png", "c_astronaut.png"]
        assert [r.rel_path for r in bob.my_queue()] == ["b_coffee.png", "sub/d_rocket.png"]
        cat = bob.get("a_cat.png")
        bob.load_mask(cat)
        with pytest.raises(TeamPermissionError, match="assigned to alice"):
            bob.save_mask(cat, mask_of(3))
        alice.save_mask(alice.get("a_cat.png"), mask_of(4), Status.DONE)
        assert [r.rel_path for r in alice.my_queue()] == ["c_astronaut.png"]  # done leaves the queue
    with team.raw("bob") as raw:
        import psycopg

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("INSERT INTO segstudio.mask_versions(image_id, parent, png, status) "
                        "SELECT id, mask_head, NULL, 'done' FROM segstudio.images WHERE rel_path = 'c_astronaut.png'")  # fmt: skip


def test_review_shows_in_info_export_takes_accepted_only_and_the_report_counts_effort(
    team, image_folder, tmp_path, capsys
):
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "rita", tmp_path) as rita,
    ):
        cat, coffee = alice.get("a_cat.png"), alice.get("b_coffee.png")
        for rec, value in ((cat, 3), (coffee, 5)):
            alice.load_mask(rec)
            alice.save_mask(rec, mask_of(value), Status.DONE)
            alice.add_effort(rec, 10.0 if rec is cat else 30.0, {"brush": 4 if rec is cat else 8})
        rita.review(cat, True)
        rita.review(coffee, False, "the cup's handle is missing")
    code, out, _ = _cli(capsys, "info", str(image_folder), "--db", team.url("alice"))
    assert code == 0
    assert "rejected: b_coffee.png by rita: the cup's handle is missing" in out
    out_dir = tmp_path / "export"
    code, out, err = _cli(capsys, "export", str(image_folder), "--db", team.url("alice"), "--format", "masks",
                          "--out", str(out_dir), "--accepted-only")  # fmt: skip
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["exported"] == 1
    written = sorted(p.name for p in out_dir.rglob("*.png"))
    assert any("a_cat" in n for n in written) and not any("b_coffee" in n for n in written)
    code, _, err = _cli(capsys, "export", str(image_folder), "--format", "masks", "--out", str(tmp_path / "x"),
                        "--accepted-only")  # fmt: skip
    assert code == 2 and "--db" in err
    code, out, _ = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("lena"), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["groups"] == [
        {"annotator": "alice", "model_version": "(none)", "accepted_images": 1, "median_seconds": 10.0,
         "median_actions": 4}]  # fmt: skip
    assert report["rejection_rate"]["alice"] == {"reviews": 2, "rejected": 1, "rate": 0.5}
    code, out, _ = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("lena"))
    assert code == 0 and "rejection rate of alice: 1/2 reviews (50%)" in out
