"""A lead takes an image out of consensus (`team single --keep`), before or after the annotators saved:
the kept annotation becomes the image's version, the other stays in the history, and the image goes on
as an ordinary image of the kept annotator. Only leads may, enforced by the server."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest

from segstudio.core.project import Status
from segstudio.team.errors import TeamError, TeamPermissionError
from tests.team.conftest import mask_of
from tests.team.test_consensus import _annotate, _b_of, _cli, _consensus_on, _halves, _join


def test_before_anyone_saved_the_image_just_leaves_consensus_for_the_kept_annotator(
    team, image_folder, tmp_path, capsys
):
    _consensus_on(team, image_folder, capsys, "a_cat.png")  # alice is A (assignee), bob is B
    code, out, err = _cli(capsys, "team", "single", str(image_folder), "a_cat.png", "--db", team.url("lena"),
                          "--keep", "bob")  # fmt: skip
    assert code == 0, err
    assert "a_cat.png: out of consensus (nobody had saved on it); an ordinary image of bob" in out
    with _join(team, image_folder, "lena", tmp_path) as lena:
        cat = lena.get("a_cat.png")
        assert lena.consensus_of(cat) is None and lena.mask_history(cat) == []
        assert lena.assignments()[cat.id] == "bob"
    with _join(team, image_folder, "alice", tmp_path) as alice:
        assert alice.my_queue() == []
    with _join(team, image_folder, "bob", tmp_path) as bob:
        assert [r.rel_path for r in bob.my_queue()] == ["a_cat.png"]
        _annotate(bob, "a_cat.png", mask_of(3))  # a main-line save, as on any image
        assert bob._head(cat.id) is not None and bob.get("a_cat.png").status == Status.DONE


def test_after_saves_the_kept_annotation_becomes_the_main_version_and_the_other_stays_in_history(
    team, image_folder, tmp_path, capsys
):
    _consensus_on(team, image_folder, capsys, "a_cat.png")  # alice is A, bob is B
    a, b = _halves(), _b_of(_halves())
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        _annotate(alice, "a_cat.png", a, Status.IN_PROGRESS)  # alice is half way, her window open
        _annotate(bob, "a_cat.png", b)
        cat = alice.get("a_cat.png")
        before = alice.consensus_of(cat)
        bob.load_mask(cat)

        code, out, err = _cli(capsys, "team", "single", str(image_folder), "a_cat.png", "--db",
                              team.url("lena"), "--keep", "A")  # fmt: skip
        assert code == 0, err
        with _join(team, image_folder, "lena", tmp_path) as lena:
            found = lena.consensus_of(cat)
            assert not found.open and found.kept == "A" and found.resolved_by == "lena"
            main = lena.mask_history(cat)[-1]
            assert f"alice's annotation is version {main.id}, an ordinary image of alice" in out
            assert (main.id, main.author, main.branch, main.status) == (
                found.resolved_version, "alice", None, "in_progress"
            )  # fmt: skip
            assert np.array_equal(lena.load_mask(lena.get("a_cat.png")), a)
            assert lena.get("a_cat.png").status == Status.IN_PROGRESS
            assert lena.assignments()[cat.id] == "alice"
            code, out, _ = _cli(
                capsys, "team", "report", str(image_folder), "--db", team.url("lena"), "--json"
            )
            report = json.loads(out)["consensus"]
            assert (report["single"], report["resolved"], report["waiting"]) == (1, 0, 0)

        # bob's branch is never deleted: in the history, readable by all now, and closed to his saves
        history = alice.mask_history(cat)
        assert [(v.author, v.branch) for v in history] == [("alice", "A"), ("bob", "B"), ("alice", None)]
        assert np.array_equal(alice.load_mask_version(cat, before.head_b), b)
        with pytest.raises(TeamError, match="out of consensus while you worked on it, keeping alice"):
            bob.save_mask(bob.get("a_cat.png"), mask_of(4), Status.DONE)
        assert bob.my_queue() == []

        # alice's open window goes on: her next save lands on the main line, on top of her kept version
        assert [r.rel_path for r in alice.my_queue()] == ["a_cat.png"]
        finished = a.copy()
        finished[:2] = 3
        alice.save_mask(cat, finished, Status.DONE)
        assert alice._head(cat.id) == alice.mask_history(cat)[-1].id
        assert alice.mask_history(cat)[-1].parent == main.id
        assert np.array_equal(alice.load_mask(cat), finished) and alice.my_queue() == []
    with _join(team, image_folder, "rita", tmp_path) as rita:  # reviewed like any image
        assert rita.review(rita.get("a_cat.png"), True).verdict == "accepted"
    code, _, err = _cli(capsys, "team", "single", str(image_folder), "a_cat.png", "--db", team.url("lena"),
                        "--keep", "B")  # fmt: skip
    assert code == 2 and "a_cat.png is out of consensus already (lena, kept A" in err


def test_keeping_the_annotator_who_saved_nothing_keeps_the_version_the_consensus_started_from(
    team, image_folder, tmp_path, capsys
):
    with _join(team, image_folder, "bob", tmp_path) as bob:  # a main version before consensus
        _annotate(bob, "a_cat.png", mask_of(5), Status.IN_PROGRESS)
    _consensus_on(team, image_folder, capsys, "a_cat.png")
    with _join(team, image_folder, "alice", tmp_path) as alice:
        _annotate(alice, "a_cat.png", _halves())
    code, _, err = _cli(capsys, "team", "single", str(image_folder), "a_cat.png", "--db", team.url("lena"),
                        "--keep", "carl")  # fmt: skip
    assert code == 2 and "carl annotates neither branch of a_cat.png: keep A (alice) or B (bob)" in err
    code, _, err = _cli(capsys, "team", "single", str(image_folder), "b_coffee.png", "--db", team.url("lena"),
                        "--keep", "A")  # fmt: skip
    assert code == 2 and "b_coffee.png is not a consensus image" in err
    code, _, err = _cli(capsys, "team", "single", str(image_folder), "a_cat.png", "--db", team.url("lena"),
                        "--keep", "bob")  # fmt: skip
    assert code == 0, err
    with _join(team, image_folder, "bob", tmp_path) as bob:
        cat = bob.get("a_cat.png")
        assert np.array_equal(bob.load_mask(cat), mask_of(5)) and cat.status == Status.IN_PROGRESS
        assert [(v.author, v.branch) for v in bob.mask_history(cat)] == [
            ("bob", None), ("alice", "A"), ("bob", None)
        ]  # fmt: skip
        assert [r.rel_path for r in bob.my_queue()] == ["a_cat.png"]


def test_only_leads_take_an_image_out_of_consensus_even_through_psql(team, image_folder, tmp_path, capsys):
    _consensus_on(team, image_folder, capsys, "a_cat.png", "b_coffee.png")
    with _join(team, image_folder, "alice", tmp_path) as alice:
        _annotate(alice, "a_cat.png", _halves())
        image = alice.get("a_cat.png").id
    for member in ("alice", "bob", "rita"):
        with team.raw(member) as raw, pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("UPDATE segstudio.consensus SET kept = 'A' WHERE image_id = %s", (image,))
        with team.raw(member) as raw, pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("DELETE FROM segstudio.consensus WHERE image_id = %s", (image,))
        with _join(team, image_folder, member, tmp_path) as project, pytest.raises(TeamPermissionError):
            project.leave_consensus(project.get("a_cat.png"), "A")
    with _join(team, image_folder, "lena", tmp_path) as lena:
        assert lena.consensus_of(image).open
    with team.raw("lena") as raw:  # psql as a lead does the same as the command
        raw.execute("UPDATE segstudio.consensus SET kept = 'A' WHERE image_id = %s", (image,))
        with pytest.raises(psycopg.Error) as refused:  # once only
            raw.execute("UPDATE segstudio.consensus SET kept = 'B' WHERE image_id = %s", (image,))
        assert refused.value.sqlstate == "SCONS"
    with _join(team, image_folder, "lena", tmp_path) as lena:
        cat = lena.get("a_cat.png")
        assert np.array_equal(lena.load_mask(cat), _halves()) and lena.consensus_of(cat).kept == "A"
