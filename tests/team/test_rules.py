"""The rules hold in the database itself: each denial is proven through a raw psycopg connection as
that member (what psql would let them do), not through the app."""

from __future__ import annotations

import psycopg
import pytest

from segstudio.core.project import Status
from segstudio.team.blobs import encode_png
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project
from tests.team.conftest import mask_of


@pytest.fixture
def team(team_db, image_folder, tmp_path):
    create_team_project(image_folder, team_db.url("lena"))
    return team_db


def _ids(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT rel_path, id FROM segstudio.images").fetchall())


def _save(conn, image_id: int, value: int, parent=None) -> int:
    return conn.execute(
        "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, %s, %s, 'in_progress') "
        "RETURNING id",
        (image_id, parent, encode_png(mask_of(value))),
    ).fetchone()[0]


def _lease(conn, image_id: int, seconds: float = 120) -> None:
    conn.execute(
        "INSERT INTO segstudio.leases(image_id, expires_at) VALUES (%s, now() + make_interval(secs => %s))",
        (image_id, seconds),
    )


def test_an_annotator_cannot_change_another_members_leased_image(team):
    with team.raw("bob") as bob, team.raw("alice") as alice:
        image = _ids(bob)["a_cat.png"]
        _lease(bob, image)
        cur = alice.execute("UPDATE segstudio.images SET status = 'done' WHERE id = %s", (image,))
        assert cur.rowcount == 0  # row-level security hides the leased row from alice's update
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            _save(alice, image, 4)
        assert (
            alice.execute(
                "UPDATE segstudio.leases SET holder = 'alice' WHERE image_id = %s", (image,)
            ).rowcount
            == 0
        )
        assert alice.execute("DELETE FROM segstudio.leases WHERE image_id = %s", (image,)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute(
                "INSERT INTO segstudio.leases(image_id, holder, expires_at) VALUES (%s, 'bob', now())",
                (image,),
            )
        assert bob.execute("SELECT status, mask_head FROM segstudio.images WHERE id = %s", (image,)).fetchone() == (
            "new", None)  # fmt: skip
        _save(bob, image, 4)  # the holder can


def test_an_expired_lease_frees_the_image(team):
    with team.raw("bob") as bob, team.raw("alice") as alice:
        image = _ids(bob)["a_cat.png"]
        _lease(bob, image, seconds=0)
        assert (
            alice.execute("UPDATE segstudio.images SET status = 'skipped' WHERE id = %s", (image,)).rowcount
            == 1
        )
        assert alice.execute(
            "UPDATE segstudio.leases SET holder = current_user, expires_at = now() + interval '1 minute' "
            "WHERE image_id = %s", (image,)).rowcount == 1  # fmt: skip


def test_a_stale_save_is_refused_and_never_applied(team):
    with team.raw("bob") as bob, team.raw("alice") as alice:
        image = _ids(bob)["b_coffee.png"]
        first = _save(alice, image, 1)
        second = _save(bob, image, 2, parent=first)
        with pytest.raises(psycopg.Error, match="stale save refused") as caught:
            _save(alice, image, 3, parent=first)
        assert caught.value.sqlstate == "SSTAL"
        assert (
            alice.execute("SELECT mask_head FROM segstudio.images WHERE id = %s", (image,)).fetchone()[0]
            == second
        )
        assert (
            alice.execute(
                "SELECT count(*) FROM segstudio.mask_versions WHERE image_id = %s", (image,)
            ).fetchone()[0]
            == 2
        )


def test_an_annotator_cannot_review_delete_versions_move_the_head_or_change_the_scheme(team):
    with team.raw("alice") as alice:
        image = _ids(alice)["a_cat.png"]
        version = _save(alice, image, 1)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute(
                "INSERT INTO segstudio.reviews(image_id, mask_version, verdict) VALUES (%s, %s, 'accepted')",
                (image, version),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("DELETE FROM segstudio.mask_versions WHERE id = %s", (version,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("UPDATE segstudio.mask_versions SET png = NULL WHERE id = %s", (version,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("UPDATE segstudio.images SET mask_head = NULL WHERE id = %s", (image,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("UPDATE segstudio.meta SET value = '{}'::jsonb WHERE key = 'scheme'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("INSERT INTO segstudio.settings(key, value) VALUES ('val_fraction', '0.9')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute(  # a version in another member's name
                "INSERT INTO segstudio.mask_versions(image_id, parent, png, status, author) "
                "VALUES (%s, %s, NULL, 'new', 'bob')",
                (image, version),
            )
        assert alice.execute("SELECT count(*) FROM segstudio.mask_versions").fetchone()[0] == 1


def test_a_reviewer_reviews_others_work_only_and_only_its_current_version(team):
    with team.raw("alice") as alice, team.raw("rita") as rita, team.raw("lena") as lena:
        image = _ids(alice)["a_cat.png"]
        old = _save(alice, image, 1)
        head = _save(alice, image, 2, parent=old)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # not the current version
            rita.execute("INSERT INTO segstudio.reviews(image_id, mask_version, verdict) VALUES (%s, %s, 'accepted')", (image, old))  # fmt: skip
        rita.execute("INSERT INTO segstudio.reviews(image_id, mask_version, verdict, comment) VALUES (%s, %s, 'rejected', 'road edge')", (image, head))  # fmt: skip
        own = _save(rita, image, 3, parent=head)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # her own work
            rita.execute("INSERT INTO segstudio.reviews(image_id, mask_version, verdict) VALUES (%s, %s, 'accepted')", (image, own))  # fmt: skip
        lena.execute("INSERT INTO segstudio.reviews(image_id, mask_version, verdict) VALUES (%s, %s, 'accepted')", (image, own))  # fmt: skip


def test_the_app_reports_the_denials_as_clear_errors(team, image_folder, tmp_path):
    from segstudio.team.errors import LeaseError, StaleSaveError, TeamPermissionError

    with TeamProject.join(image_folder, team.url("alice"), state_dir=tmp_path / "a") as alice, \
            TeamProject.join(image_folder, team.url("bob"), state_dir=tmp_path / "b") as bob:  # fmt: skip
        rec = alice.get("a_cat.png")
        alice.take_lease(rec)
        assert bob.editors() == {rec.id: "alice"}
        with pytest.raises(LeaseError, match="being edited by alice"):
            bob.take_lease(rec)
        with pytest.raises(LeaseError, match="being edited by alice"):
            bob.save_mask(rec, mask_of(9))
        with pytest.raises(LeaseError, match="being edited by alice"):
            bob.set_status(rec, Status.SKIPPED)
        with pytest.raises(TeamPermissionError, match="may not review"):
            alice.review(alice.save_mask(rec, mask_of(1), Status.DONE), accepted=True)
        with pytest.raises(TeamPermissionError, match="change the label scheme"):
            alice.set_scheme("voc")
        with pytest.raises(TeamPermissionError, match="val_fraction"):
            alice.set_setting("val_fraction", 0.9)
        alice.set_setting("gui.last_image", "a_cat.png")  # the member's own: kept on this machine
        assert alice.get_setting("gui.last_image") == "a_cat.png"
        assert bob.get_setting("gui.last_image") is None
        alice.release_lease(rec)
        other = bob.get("b_coffee.png")
        bob.load_mask(other)
        alice.load_mask(other)
        alice.save_mask(other, mask_of(4))
        with pytest.raises(StaleSaveError, match="saved by alice") as caught:
            bob.save_mask(other, mask_of(5))
        assert "nothing was overwritten" in str(caught.value)
        assert (bob.load_mask(other) == mask_of(4)).all()  # reload shows alice's; now bob may save on top
        bob.save_mask(other, mask_of(5))
        assert [v.author for v in bob.mask_history(other)] == ["alice", "bob"]
