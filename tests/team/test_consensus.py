"""Consensus: a lead sends images to two annotators, each saves on their own branch (blind, enforced by the
server), the agreement is reported, and a reviewer takes A, B or a merge as the image's main version."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest

from segstudio.cli import main
from segstudio.core.project import Project, Status
from segstudio.core.schemes import UNLABELED
from segstudio.team.agreement import agreement_of, merge_annotations
from segstudio.team.blobs import encode_png
from segstudio.team.consensus import pick_consensus, second_annotators
from segstudio.team.errors import StaleSaveError, TeamError
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project, pull_team_project
from tests.team.conftest import mask_of


def _halves() -> np.ndarray:
    """Class 1 on the left half, class 2 on the right (32 x 48)."""
    mask = np.full((32, 48), 1, np.uint8)
    mask[:, 24:] = 2
    return mask


def _b_of(a: np.ndarray) -> np.ndarray:
    """B differs from A in a known 8 x 8 rectangle (class 1 -> 2) and left its bottom 4 rows unlabelled."""
    b = a.copy()
    b[0:8, 16:24] = 2
    b[28:32, :] = UNLABELED
    return b


# counted: rows 0-27 (B's void rows left out) = 1344 px; A: 672 of class 1, 672 of class 2; B moved 64 px
IOU_1 = (672 - 64) / 672
IOU_2 = 672 / (672 + 64)


def _join(team, folder, user, tmp_path, name: str | None = None) -> TeamProject:
    return TeamProject.join(folder, team.url(user), state_dir=tmp_path / (name or user), heartbeat=False)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _consensus_on(team, folder, capsys, *paths: str) -> None:
    """The lead assigns `paths` by hand to alice, bob (round robin) and sends all of them to consensus."""
    code, out, err = _cli(capsys, "team", "assign", str(folder), *paths, "--db", team.url("lena"),
                          "--to", "alice,bob", "--consensus", "1")  # fmt: skip
    assert code == 0, err
    assert f"consensus: {len(paths)} image(s)" in out


def _annotate(project: TeamProject, path: str, mask: np.ndarray, status=Status.DONE) -> None:
    rec = project.get(path)
    project.take_lease(rec)
    project.load_mask(rec)
    project.save_mask(rec, mask, status)


def test_the_plan_picks_a_fixed_fraction_and_never_gives_both_annotations_to_one_member():
    from tests.team.test_assignments import _rec

    recs = [_rec(i, f"{i}.png") for i in range(10)]
    picked = pick_consensus(recs, 0.3)
    assert len(picked) == 3 and pick_consensus(list(reversed(recs)), 0.3) == picked
    triples = second_annotators(
        [(r, "alice") for r in recs[:4]] + [(recs[4], "bob")], ["alice", "bob", "carl"]
    )
    assert all(a != b for _, a, b in triples)
    assert [b for _, _, b in triples] == ["bob", "carl", "bob", "carl", "alice"]  # dealt evenly
    with pytest.raises(Exception, match="two different annotators"):
        second_annotators([(recs[0], "alice")], ["alice"])
    with pytest.raises(Exception, match="between 0 and 1"):
        pick_consensus(recs, 1.5)


def test_consensus_assignment_gives_each_image_two_distinct_annotators_with_their_own_queues(
    team, image_folder, tmp_path, capsys
):
    code, out, err = _cli(capsys, "team", "assign", str(image_folder), "--db", team.url("lena"),
                          "--to", "alice,bob", "--consensus", "0.5")  # fmt: skip
    assert code == 0, err
    assert "consensus: 2 image(s) also go to a second annotator" in out
    with _join(team, image_folder, "lena", tmp_path) as lena:
        found = lena.consensus_images()
        owners = lena.assignments()
        assert len(found) == 2
        for image_id, c in found.items():
            assert c.annotator_a == owners[image_id] and c.annotator_b != c.annotator_a
            assert {c.annotator_a, c.annotator_b} == {"alice", "bob"} and c.open
    with _join(team, image_folder, "bob", tmp_path) as bob:
        queue = {r.id for r in bob.my_queue()}
        assert {i for i, c in found.items() if c.annotator_b == "bob"} <= queue
        assert {i for i, m in owners.items() if m == "bob"} <= queue
    first, second = sorted(found)
    with _join(team, image_folder, "lena", tmp_path) as lena:
        paths = {i: lena.get_by_id(i).rel_path for i in found}
        b_of_second = found[second].annotator_b
        with _join(team, image_folder, b_of_second, tmp_path) as annotator:
            _annotate(annotator, paths[second], mask_of(2))
    # dealt again by hand: the pair changes where nobody saved yet, stays where one annotator has
    code, out, err = _cli(capsys, "team", "assign", str(image_folder), paths[first], paths[second], "--db",
                          team.url("lena"), "--to", "rita,lena", "--consensus", "1")  # fmt: skip
    assert code == 0, err
    assert "consensus: 1 image(s) also go to a second annotator" in out  # the started one is kept
    with _join(team, image_folder, "lena", tmp_path) as lena:
        again = lena.consensus_images()
        assert (again[first].annotator_a, again[first].annotator_b) == ("rita", "lena")
        assert again[second].annotator_b == b_of_second and again[second].head_b != again[second].fork
    a_of_second = again[second].annotator_a  # no longer its assignee: still finds their branch in the queue
    with _join(team, image_folder, a_of_second, tmp_path) as annotator:
        assert second in {r.id for r in annotator.my_queue()}


def test_each_annotator_saves_their_own_branch_blind_and_the_server_refuses_the_other_branch(
    team, image_folder, tmp_path, capsys
):
    _consensus_on(team, image_folder, capsys, "a_cat.png")  # alice is A (assignee), bob is B
    a, b = _halves(), _b_of(_halves())
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        _annotate(alice, "a_cat.png", a, Status.IN_PROGRESS)
        _annotate(bob, "a_cat.png", b)  # at the same time: no lease between the two branches
        assert bob.lease_holder(bob.get("a_cat.png")) is None
        rec = alice.get("a_cat.png")
        assert np.array_equal(alice.load_mask(rec), a) and np.array_equal(bob.load_mask(rec), b)
        assert alice.get("a_cat.png").status == Status.IN_PROGRESS  # each sees their own branch's status
        assert bob.get("a_cat.png").status == Status.DONE
        assert bob.images(status="done")[0].rel_path == "a_cat.png"
        alice.save_mask(rec, a, Status.DONE)
        found = alice.consensus_of(rec)
        history = alice.mask_history(rec)
        assert [(v.branch, v.author) for v in history] == [("A", "alice"), ("A", "alice")]  # B is hidden
        assert history[1].parent == history[0].id and history[0].parent == found.fork is None
        assert found.head_a == history[1].id and alice._head(rec.id) is None  # main line untouched

        # stale saves are refused per branch: alice's second window started before her last save
        with _join(team, image_folder, "alice", tmp_path, "alice2") as again:
            again._base[rec.id] = history[0].id
            with pytest.raises(StaleSaveError):
                again.save_mask(again.get("a_cat.png"), mask_of(3))

    with team.raw("alice") as raw:
        image = raw.execute("SELECT id FROM segstudio.images WHERE rel_path = 'a_cat.png'").fetchone()[0]
        head_b = raw.execute(
            "SELECT head_b FROM segstudio.consensus WHERE image_id = %s", (image,)
        ).fetchone()[0]
        # blind: alice cannot read bob's annotation, even with psql
        assert (
            raw.execute("SELECT count(*) FROM segstudio.mask_versions WHERE branch = 'B'").fetchone()[0] == 0
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # nor write his branch
            raw.execute(
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status, branch) "
                "VALUES (%s, %s, %s, 'done', 'B')",
                (image, head_b, encode_png(mask_of(4))),
            )
        with pytest.raises(psycopg.Error) as refused:  # nor save the main line around consensus
            raw.execute(
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, NULL, %s, 'done')",
                (image, encode_png(mask_of(4))),
            )
        assert refused.value.sqlstate == "SCONS"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # nor pick the annotators
            raw.execute("UPDATE segstudio.consensus SET annotator_b = 'alice' WHERE image_id = %s", (image,))
    with team.raw("rita") as raw:  # a reviewer sees both; may not write a branch
        assert (
            raw.execute("SELECT count(*) FROM segstudio.mask_versions WHERE branch IS NOT NULL").fetchone()[0]
            == 3
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute(
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status, branch) "
                "VALUES (%s, %s, %s, 'done', 'B')",
                (image, head_b, encode_png(mask_of(4))),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # no verdict while open
            raw.execute(
                "INSERT INTO segstudio.reviews(image_id, mask_version, verdict) VALUES (%s, %s, 'accepted')",
                (image, head_b),
            )


def test_agreement_matches_a_hand_computed_case_in_report_and_info(
    team, image_folder, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a, b = _halves(), _b_of(_halves())
    by_hand, _ = agreement_of(a, b, ["c0", "c1", "c2"])
    assert by_hand.per_class == {"c1": round(IOU_1, 4), "c2": round(IOU_2, 4)}
    assert by_hand.miou == round((IOU_1 + IOU_2) / 2, 4) and (by_hand.pixels, by_hand.disputed) == (1344, 64)

    _consensus_on(team, image_folder, capsys, "a_cat.png", "b_coffee.png")  # A: alice, bob; B: bob, alice
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        names = alice.scheme.names
        _annotate(alice, "a_cat.png", a)
        _annotate(bob, "a_cat.png", b)
        _annotate(bob, "b_coffee.png", a)
        _annotate(alice, "b_coffee.png", a, Status.IN_PROGRESS)  # not done: not compared yet
    code, out, err = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("rita"), "--json")
    assert code == 0, err
    report = json.loads(out)["consensus"]
    assert (report["consensus_images"], report["compared"], report["waiting"], report["resolved"]) == (
        2,
        1,
        1,
        0,
    )
    (image,) = report["images"]
    assert image["image"] == "a_cat.png" and image["annotators"] == ["alice", "bob"]
    assert image["per_class_iou"] == {names[1]: round(IOU_1, 4), names[2]: round(IOU_2, 4)}
    assert image["miou"] == pytest.approx((IOU_1 + IOU_2) / 2, abs=1e-4) and image["disputed_pixels"] == 64
    assert report["per_class_iou"] == image["per_class_iou"]
    assert report["pairs"] == [{"annotators": ["alice", "bob"], "images": 1, "mean_image_miou": image["miou"],
                                "pooled_miou": image["miou"]}]  # fmt: skip
    cached = list((tmp_path / "cache").rglob("consensus_agreement.json"))
    assert len(cached) == 1 and len(json.loads(cached[0].read_text())) == 1  # one pair compared
    code, out, _ = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("rita"), "--json")
    assert json.loads(out)["consensus"] == report  # the second report reads the pair from the cache
    code, out, _ = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("rita"))
    assert code == 0
    assert (
        f"consensus: 2 image(s), 1 compared, 1 waiting, 0 resolved; agreement mIoU {image['miou']:.3f}" in out
    )
    assert f"{names[1]:<20}{IOU_1:>8.3f}" in out and "alice + bob" in out
    code, out, _ = _cli(capsys, "info", str(image_folder), "--db", team.url("lena"), "--json")
    assert json.loads(out)["consensus"]["miou"] == image["miou"]
    code, out, _ = _cli(capsys, "info", str(image_folder), "--db", team.url("lena"))
    assert f"consensus: 2 image(s) (0 resolved); agreement mIoU {image['miou']:.3f} over 1 compared" in out


def test_a_reviewer_takes_one_annotation_or_merges_and_the_result_is_a_normal_version_to_accept(
    team, image_folder, tmp_path, capsys
):
    a, b = _halves(), _b_of(_halves())
    with _join(team, image_folder, "bob", tmp_path) as bob:  # a version before consensus, accepted
        _annotate(bob, "a_cat.png", mask_of(5))
    with _join(team, image_folder, "rita", tmp_path) as rita:
        rita.review(rita.get("a_cat.png"), True)
    _consensus_on(team, image_folder, capsys, "a_cat.png", "b_coffee.png")
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
        _join(team, image_folder, "rita", tmp_path) as rita,
    ):
        cat = rita.get("a_cat.png")
        fork = rita._head(cat.id)
        assert rita.verdicts() == {}  # the verdict before consensus no longer counts
        _annotate(alice, "a_cat.png", a)
        with pytest.raises(Exception, match="bob has not finished"):
            rita.resolve_consensus(cat, "B")
        with pytest.raises(Exception, match="waits for consensus"):
            rita.review(cat, True)
        assert np.array_equal(
            bob.load_mask(bob.get("a_cat.png")), mask_of(5)
        )  # both branches start at the fork
        _annotate(bob, "a_cat.png", b)

        code, out, err = _cli(capsys, "team", "resolve", str(image_folder), "a_cat.png", "--db",
                              team.url("bob"), "--take", "B")  # fmt: skip
        assert code == 2 and "someone else resolves" in err  # bob annotated a branch
        code, out, err = _cli(capsys, "team", "resolve", str(image_folder), "a_cat.png", "--db",
                              team.url("rita"), "--take", "B", "--accept")  # fmt: skip
        assert code == 0, err
        assert "made from bob's annotation (agreement mIoU 0.909, 64 disputed pixels)" in out
        main_version = rita._head(cat.id)
        history = {v.id: v for v in rita.mask_history(cat)}
        assert history[main_version].parent == fork and history[main_version].branch is None
        assert history[main_version].author == "rita"
        assert np.array_equal(rita.load_mask(cat), b) and rita.get("a_cat.png").status == Status.DONE
        assert rita.review_of(cat).verdict == "accepted"
        with pytest.raises(TeamError, match="resolved by rita while you worked"):  # the branches closed
            alice.save_mask(alice.get("a_cat.png"), a, Status.DONE)
        assert np.array_equal(alice.load_mask(alice.get("a_cat.png")), b)  # alice now sees the main line

        # merge: what both say is kept, the disputed rectangle is left unlabelled for the reviewer
        _annotate(bob, "b_coffee.png", a)
        _annotate(alice, "b_coffee.png", b)
        coffee = rita.get("b_coffee.png")
        bob_again = _join(team, image_folder, "bob", tmp_path, "bob2")
        bob_again.load_mask(bob_again.get("b_coffee.png"))
        found, _, _ = rita.branch_masks(coffee)
        bob_again.save_mask(bob_again.get("b_coffee.png"), a, Status.DONE)  # after rita compared...
        bob_again.close()
        with pytest.raises(StaleSaveError, match="changed while you compared"):
            rita.resolve_consensus(coffee, "merge", seen=(found.head_a, found.head_b))
        rita.resolve_consensus(coffee, "merge")
        merged = rita.load_mask(coffee)
        assert np.array_equal(merged, merge_annotations(a, b)[0])
        assert (merged[0:8, 16:24] == UNLABELED).all() and (merged[28:, :24] == 1).all()
        assert int((merged == UNLABELED).sum()) == 64
        fixed = merged.copy()
        fixed[merged == UNLABELED] = 1  # the reviewer paints the disputed pixels
        rita.take_lease(coffee)
        rita.save_mask(coffee, fixed, Status.DONE)
        assert rita.review(coffee, True).verdict == "accepted"

    out_dir = tmp_path / "export"
    code, out, err = _cli(capsys, "export", str(image_folder), "--db", team.url("lena"), "--format", "masks",
                          "--out", str(out_dir), "--accepted-only")  # fmt: skip
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["exported"] == 2


def test_an_unresolved_consensus_image_is_not_exported_and_pull_keeps_the_main_line(
    team, image_folder, tmp_path, capsys
):
    with _join(team, image_folder, "bob", tmp_path) as bob:
        _annotate(bob, "a_cat.png", mask_of(5))
        _annotate(bob, "b_coffee.png", mask_of(6))
    with _join(team, image_folder, "rita", tmp_path) as rita:
        rita.review(rita.get("a_cat.png"), True)
        rita.review(rita.get("b_coffee.png"), True)
    _consensus_on(team, image_folder, capsys, "a_cat.png")
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        _annotate(alice, "a_cat.png", _halves())
        _annotate(bob, "a_cat.png", _b_of(_halves()))
    out_dir = tmp_path / "export"
    code, _out, err = _cli(capsys, "export", str(image_folder), "--db", team.url("lena"), "--format", "masks",
                          "--out", str(out_dir), "--accepted-only")  # fmt: skip
    assert code == 0, err
    written = sorted(p.name for p in out_dir.rglob("*.png"))
    assert any("b_coffee" in n for n in written) and not any("a_cat" in n for n in written)

    state = tmp_path / "pulled"
    pull_team_project(team.url("lena"), image_folder, state)
    with Project.open(image_folder, state) as local:  # one mask per image: the main line, not a branch
        cat = local.get("a_cat.png")
        assert np.array_equal(local.load_mask(cat), mask_of(5))
        assert np.array_equal(local.load_mask(local.get("b_coffee.png")), mask_of(6))
    with _join(team, image_folder, "rita", tmp_path) as rita:
        rita.resolve_consensus(rita.get("a_cat.png"), "A")
    state = tmp_path / "pulled-after"
    pull_team_project(team.url("lena"), image_folder, state)
    with Project.open(image_folder, state) as local:  # resolved: the resolution comes down
        cat = local.get("a_cat.png")
        assert np.array_equal(local.load_mask(cat), _halves()) and cat.status == Status.DONE


def test_a_project_made_before_consensus_is_upgraded_by_a_lead_and_keeps_its_versions_and_reviews(
    team_db, image_folder, tmp_path, monkeypatch
):
    from segstudio.team import schema

    consensus_at = next(
        i for i, sql in enumerate(schema.MIGRATIONS) if "CREATE TABLE segstudio.consensus" in sql
    )
    with monkeypatch.context() as old:  # the SegStudio that made the project knew schema 3 only
        old.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
        old.setattr(schema, "SCHEMA_VERSION", 3)
        Project.open(image_folder).close()
        create_team_project(image_folder, team_db.url("lena"))
    with team_db.raw("alice") as raw:  # what that SegStudio stored (the new client would ask for consensus)
        image = raw.execute("SELECT id FROM segstudio.images WHERE rel_path = 'a_cat.png'").fetchone()[0]
        version = raw.execute(
            "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, NULL, %s, 'done') "
            "RETURNING id",
            (image, encode_png(mask_of(3))),
        ).fetchone()[0]
    with team_db.raw("rita") as raw:
        raw.execute(
            "INSERT INTO segstudio.reviews(image_id, mask_version, verdict) VALUES (%s, %s, 'accepted')",
            (image, version),
        )
    with pytest.raises(TeamError, match="older schema"):  # members wait for a lead
        _join(team_db, image_folder, "alice", tmp_path)
    with _join(team_db, image_folder, "lena", tmp_path) as lena:
        assert lena.schema_version == schema.SCHEMA_VERSION > consensus_at
    with _join(team_db, image_folder, "alice", tmp_path) as alice:
        cat = alice.get("a_cat.png")
        assert np.array_equal(alice.load_mask(cat), mask_of(3)) and alice.review_of(cat).verdict == "accepted"
        assert [(v.author, v.branch) for v in alice.mask_history(cat)] == [("alice", None)]
        _annotate(alice, "b_coffee.png", mask_of(4))  # main-line saves work as before
