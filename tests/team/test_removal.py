"""A lead removes images from a team project (duplicates, blurred frames) and restores them: hidden from
every member's list, queue, export and training, nothing saved lost, and only leads may - enforced by
the server, psql included."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest

from segstudio.cli import main
from segstudio.core.errors import ProjectError
from segstudio.core.project import Project, Status
from segstudio.team.blobs import encode_png
from segstudio.team.errors import LeaseError, TeamPermissionError
from segstudio.team.fine_tune import accepted_samples
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project
from segstudio.team.work_queue import WorkQueue
from tests.team.conftest import mask_of


def _join(team, folder, user, tmp_path, name: str | None = None) -> TeamProject:
    return TeamProject.join(folder, team.url(user), state_dir=tmp_path / (name or user), heartbeat=False)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _worked_on(team, folder, tmp_path) -> None:
    """alice is assigned the coffee and the cat, saves the coffee twice (done), logs effort; rita accepts it."""
    with _join(team, folder, "lena", tmp_path) as lena:
        lena.assign([lena.get("b_coffee.png"), lena.get("a_cat.png")], ["alice"], "hand")
    with _join(team, folder, "alice", tmp_path) as alice:
        coffee = alice.get("b_coffee.png")
        alice.take_lease(coffee)
        alice.load_mask(coffee)
        alice.save_mask(coffee, mask_of(1))
        alice.save_mask(coffee, mask_of(2), Status.DONE)
        alice.add_effort(coffee, 42.0, {"brush": 7})
        alice.release_lease(coffee)
    with _join(team, folder, "bob", tmp_path) as bob:  # bob's rocket stays in the project
        rocket = bob.get("sub/d_rocket.png")
        bob.load_mask(rocket)
        bob.save_mask(rocket, mask_of(4), Status.DONE)
    with _join(team, folder, "rita", tmp_path) as rita:
        rita.review(rita.get("b_coffee.png"), True, "fine")


def test_a_removed_image_leaves_lists_queue_export_and_training_and_restore_brings_it_back_exactly(
    team, image_folder, tmp_path, capsys
):
    _worked_on(team, image_folder, tmp_path)
    with _join(team, image_folder, "alice", tmp_path) as alice:
        coffee = alice.get("b_coffee.png")
        before = {
            "record": coffee,
            "mask": alice.load_mask(coffee),
            "history": alice.mask_history(coffee),
            "review": alice.review_of(coffee),
            "effort": alice.effort_by_member(),
        }
        assert [r.rel_path for r in alice.my_queue()] == ["a_cat.png"]

    code, out, err = _cli(capsys, "team", "remove", str(image_folder), "b_coffee.png", "a_cat.png",
                          "--db", team.url("lena"))  # fmt: skip
    assert code == 0, err
    assert "removed 2 image(s): b_coffee.png, a_cat.png" in out

    with _join(team, image_folder, "alice", tmp_path) as alice:
        listed = [r.rel_path for r in alice.images()]
        assert listed == ["c_astronaut.png", "sub/d_rocket.png"] and len(alice) == 2
        assert alice.get("b_coffee.png") is None and alice.my_queue() == []  # her queue had the cat
        assert alice.counts()[Status.DONE] == 1  # the rocket; the coffee is no longer counted
        with pytest.raises(Exception, match="removed from the team project"):  # her open window's save
            alice.save_mask(coffee, mask_of(3), Status.DONE, base_version=before["history"][-1].id)
    out_dir = tmp_path / "export"
    code, out, err = _cli(capsys, "export", str(image_folder), "--db", team.url("rita"), "--format", "masks",
                          "--out", str(out_dir))  # fmt: skip
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["exported"] == 1  # bob's rocket; not the coffee
    assert not any("coffee" in p.name for p in out_dir.rglob("*"))
    with _join(team, image_folder, "rita", tmp_path) as rita:
        with pytest.raises(Exception, match="no accepted images to train on"):
            accepted_samples(rita)  # the only accepted image is removed: nothing to train on
        queue = WorkQueue(rita)
        assert queue.enqueue() == 1  # the astronaut: the rocket is done, the cat (unfinished) removed
    code, out, _ = _cli(capsys, "info", str(image_folder), "--db", team.url("rita"), "--json")
    assert (json.loads(out)["images"], json.loads(out)["removed"]) == (2, 2)
    code, out, _ = _cli(capsys, "info", str(image_folder), "--db", team.url("rita"))
    assert "images:  2  (2 removed by a lead, not counted)" in out
    code, out, _ = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("lena"), "--json")
    assert (json.loads(out)["images"], json.loads(out)["removed_images"]) == (2, 2)
    code, out, _ = _cli(capsys, "team", "report", str(image_folder), "--db", team.url("lena"))
    assert "images: 2 in the project, 2 removed by a lead" in out
    code, out, _ = _cli(capsys, "team", "restore", str(image_folder), "--db", team.url("lena"))
    assert "b_coffee.png  (removed by lena)" in out and "2 removed image(s)" in out
    # a new `team add` does not bring the files back as new images
    code, out, err = _cli(capsys, "team", "add", str(image_folder), "--db", team.url("lena"))
    assert code == 0, err
    assert "added 0 image(s)" in out and "left out 2 removed image(s)" in out

    code, out, err = _cli(capsys, "team", "restore", str(image_folder), "b_coffee.png", "a_cat.png",
                          "--db", team.url("lena"))  # fmt: skip
    assert code == 0, err
    assert "restored 2 image(s)" in out
    with _join(team, image_folder, "alice", tmp_path) as alice:
        coffee = alice.get("b_coffee.png")
        assert coffee == before["record"]  # the same record: id, status, split, hash
        assert np.array_equal(alice.load_mask(coffee), before["mask"])
        assert alice.mask_history(coffee) == before["history"]
        assert alice.review_of(coffee) == before["review"]
        assert alice.effort_by_member() == before["effort"]
        assert [r.rel_path for r in alice.my_queue()] == ["a_cat.png"]  # her assignment is back
        assert len(alice) == 4
        assert len(accepted_samples(alice)[0]) + len(accepted_samples(alice)[1]) == 1


def test_an_image_another_member_is_editing_is_not_removed_and_nothing_is_half_done(
    team, image_folder, tmp_path, capsys
):
    with _join(team, image_folder, "bob", tmp_path) as bob:
        bob.take_lease(bob.get("c_astronaut.png"))
        code, _, err = _cli(capsys, "team", "remove", str(image_folder), "a_cat.png", "c_astronaut.png",
                            "--db", team.url("lena"))  # fmt: skip
        assert code == 2
        assert "c_astronaut.png is being edited by bob, so nothing was removed: ask them to close it" in err
        assert len(bob) == 4  # all or none: the cat is still there
        with _join(team, image_folder, "lena", tmp_path) as lena:
            with pytest.raises(LeaseError, match="being edited by bob"):
                lena.remove_images([lena.get("c_astronaut.png")])
            lena.take_lease(lena.get("a_cat.png"))  # her own lease does not stop her
            assert [r.rel_path for r in lena.remove_images([lena.get("a_cat.png")])] == ["a_cat.png"]
    code, _, err = _cli(capsys, "team", "remove", str(image_folder), "nope.png", "--db", team.url("lena"))
    assert code == 2 and "nope.png is not an image of the team project" in err
    code, _, err = _cli(capsys, "team", "remove", str(image_folder), "a_cat.png", "--db", team.url("lena"))
    assert code == 2 and "a_cat.png is removed already" in err
    code, _, err = _cli(
        capsys, "team", "restore", str(image_folder), "b_coffee.png", "--db", team.url("lena")
    )
    assert code == 2 and "b_coffee.png is part of the project (not removed)" in err


def test_only_leads_remove_or_restore_even_through_psql(team, image_folder, tmp_path, capsys):
    with team.raw("lena") as raw:
        ids = dict(raw.execute("SELECT rel_path, id FROM segstudio.images").fetchall())
        raw.execute("UPDATE segstudio.images SET removed_at = 1 WHERE id = %s", (ids["b_coffee.png"],))
        assert raw.execute(
            "SELECT removed_by FROM segstudio.images WHERE id = %s", (ids["b_coffee.png"],)
        ).fetchone() == ("lena",)
    for member in ("alice", "rita"):
        with team.raw(member) as raw:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # remove
                raw.execute("UPDATE segstudio.images SET removed_at = 1 WHERE id = %s", (ids["a_cat.png"],))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # restore
                raw.execute(
                    "UPDATE segstudio.images SET removed_at = NULL WHERE id = %s", (ids["b_coffee.png"],)
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # nor delete the record
                raw.execute("DELETE FROM segstudio.images WHERE id = %s", (ids["a_cat.png"],))
            with pytest.raises(psycopg.Error) as refused:  # nor save on a removed image
                raw.execute(
                    "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, NULL, %s, 'done')",
                    (ids["b_coffee.png"], encode_png(mask_of(1))),
                )
            assert refused.value.sqlstate == "P0002"
        code, _, err = _cli(
            capsys, "team", "remove", str(image_folder), "a_cat.png", "--db", team.url(member)
        )
        assert code == 2 and f"your role ({member}" in err and "remove images" in err
    with _join(team, image_folder, "alice", tmp_path) as alice:
        with pytest.raises(TeamPermissionError):
            alice.restore_images([alice.removed_images()[0].record])
        assert [r.rel_path for r in alice.images()] == ["a_cat.png", "c_astronaut.png", "sub/d_rocket.png"]
    # a lead whose image another member edits is refused in psql too
    with team.raw("lena") as raw, team.raw("bob") as bob:
        bob.execute(
            "INSERT INTO segstudio.leases(image_id, expires_at) VALUES (%s, now() + interval '2 minutes')",
            (ids["a_cat.png"],),
        )
        with pytest.raises(psycopg.Error) as refused:
            raw.execute("UPDATE segstudio.images SET removed_at = 1 WHERE id = %s", (ids["a_cat.png"],))
        assert refused.value.sqlstate == "SLEAS" and "being edited by bob" in str(refused.value)


def test_a_restore_whose_path_a_newer_image_took_is_refused(team, image_folder, tmp_path):
    with _join(team, image_folder, "lena", tmp_path) as lena:
        old = lena.get("a_cat.png")
        lena.remove_images([old])
        with team.raw("lena") as raw:  # a newer image under that name (psql: `team add` leaves it out)
            raw.execute(
                "INSERT INTO segstudio.images(id, rel_path, sort_key, size, mtime_ns, content_hash, split, "
                "created_at, updated_at) VALUES (99, 'a_cat.png', 'a_cat.png', 1, 1, 'x', 'train', 0, 0)"
            )
        with pytest.raises(Exception, match="an image added since has that path, so nothing was restored"):
            lena.restore_images([old])
        assert lena.find_removed("a_cat.png") == old


def test_a_project_of_schema_6_is_upgraded_and_keeps_its_removed_images_removed(
    team_db, image_folder, tmp_path, monkeypatch
):
    from segstudio.team import schema

    with monkeypatch.context() as old:  # the SegStudio that made the project knew schema 6
        old.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])
        old.setattr(schema, "SCHEMA_VERSION", 6)
        Project.open(image_folder).close()
        create_team_project(image_folder, team_db.url("lena"))
    with team_db.raw("lena") as raw:
        raw.execute("UPDATE segstudio.images SET removed_at = 5 WHERE rel_path = 'a_cat.png'")
    with _join(team_db, image_folder, "lena", tmp_path) as lena:
        assert lena.schema_version == 7 == schema.SCHEMA_VERSION
        (gone,) = lena.removed_images()
        assert gone.record.rel_path == "a_cat.png" and gone.removed_by is None
        lena.restore_images([gone.record])
        assert len(lena) == 4


def test_a_consensus_annotator_cannot_save_their_branch_of_a_removed_image(
    team, image_folder, tmp_path, capsys
):
    code, _, err = _cli(capsys, "team", "assign", str(image_folder), "a_cat.png", "--db", team.url("lena"),
                        "--to", "alice,bob", "--consensus", "1")  # fmt: skip
    assert code == 0, err
    with _join(team, image_folder, "lena", tmp_path) as lena:
        cat = lena.get("a_cat.png")
        lena.remove_images([cat])  # a branch takes no lease: nothing stops the lead
    with team.raw("alice") as raw, pytest.raises(psycopg.Error) as refused:
        raw.execute(
            "INSERT INTO segstudio.mask_versions(image_id, parent, png, status, branch) "
            "VALUES (%s, NULL, %s, 'done', 'A')",
            (cat.id, encode_png(mask_of(1))),
        )
    assert refused.value.sqlstate == "P0002"
    with _join(team, image_folder, "alice", tmp_path) as alice:
        with pytest.raises(Exception, match="removed from the team project by a lead"):
            alice.save_mask(cat, mask_of(2), Status.DONE, base_version=None)
        assert alice.mask_history(cat) == []


def test_no_new_lease_or_review_starts_on_a_removed_image_even_through_psql(team, image_folder, tmp_path):
    """A member whose list is not refreshed yet opens a removed image, or a reviewer judges it: refused with
    a message, like a save; a lease already held is still renewed (its heartbeat does not fail)."""
    _worked_on(team, image_folder, tmp_path)
    with _join(team, image_folder, "lena", tmp_path) as lena:
        coffee, cat = lena.get("b_coffee.png"), lena.get("a_cat.png")
        lena.take_lease(cat)  # the lead's own lease does not stop the lead
        lena.remove_images([coffee, cat])
        assert lena.heartbeat() == 1  # renewing the lease held is left alone
    with team.raw("alice") as raw, pytest.raises(psycopg.Error) as refused:
        raw.execute(
            "INSERT INTO segstudio.leases(image_id, expires_at) VALUES (%s, now() + interval '2 minutes')",
            (coffee.id,),
        )
    assert refused.value.sqlstate == "P0002"
    with team.raw("rita") as raw, pytest.raises(psycopg.Error) as refused:
        raw.execute(
            "INSERT INTO segstudio.reviews(image_id, mask_version, verdict) "
            "SELECT id, mask_head, 'rejected' FROM segstudio.images WHERE id = %s",
            (coffee.id,),
        )
    assert refused.value.sqlstate == "P0002"
    with _join(team, image_folder, "alice", tmp_path) as alice, pytest.raises(ProjectError, match="removed"):
        alice.take_lease(coffee)
    with _join(team, image_folder, "rita", tmp_path) as rita, pytest.raises(ProjectError, match="removed"):
        rita.review(coffee, False, "blurred")
