"""Local -> team -> local loses nothing: records, masks (byte-exact), predictions, settings, scheme,
model versions with their checkpoints, effort."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from segstudio.core.project import Project, Status
from segstudio.team.errors import TeamError
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project, pull_team_project
from tests.team.conftest import mask_of


def _local_dump(state_dir) -> dict:
    db = sqlite3.connect(state_dir / "project.db")
    try:
        dump = {
            "images": db.execute("SELECT * FROM images ORDER BY id").fetchall(),
            "settings": {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM settings")},
            "scheme": json.loads(db.execute("SELECT value FROM meta WHERE key='scheme'").fetchone()[0]),
            "versions": [r[:1] + r[2:3] + (json.loads(r[3]),) + r[4:] for r in
                         db.execute("SELECT version, checkpoint_path, arch, metrics, parent, created_at FROM model_versions")],
            "effort": [r[:2] + (json.loads(r[2]),) + r[3:] for r in
                       db.execute("SELECT image_id, active_seconds, actions, changed_fraction, updated_at FROM effort ORDER BY image_id")],
        }  # fmt: skip
    finally:
        db.close()
    files = {}
    for sub in ("masks", "predictions", "confidence", "predictions_raw"):
        for path in sorted((state_dir / sub).glob("*.png")):
            files[f"{sub}/{path.name}"] = path.read_bytes()
    dump["files"] = files
    dump["checkpoints"] = {
        p.relative_to(state_dir).as_posix(): p.read_bytes() for p in (state_dir / "models").rglob("*.pt")
    }
    return dump


def _fill_local(folder, tmp_path) -> None:
    with Project.open(folder, scheme="camvid") as project:
        a, b, c = project.images()[:3]
        project.save_mask(a, mask_of(3), Status.DONE)
        project.save_mask(b, mask_of(5))
        labels = mask_of(2)
        project.save_prediction(c, labels, np.full(labels.shape, 200, np.uint8), "v1", raw_labels=mask_of(1))
        project.save_prediction(a, labels, np.full(labels.shape, 90, np.uint8), "v1")
        project.add_effort(a, 12.5, {"brush": 3, "fill": 1}, 0.25)
        project.add_effort(b, 4.0, {"polygon": 2})
        project.set_setting("val_fraction", 0.5)
        project.set_setting("gui.last_image", a.rel_path)
        checkpoint = project.models_dir / "v1" / "model.pt"
        checkpoint.parent.mkdir(parents=True)
        checkpoint.write_bytes(b"fake checkpoint bytes \x00\x01\x02")
        project.add_model_version("v1", checkpoint, "lraspp_mobilenet_v3_large", {"miou": 0.5}, None)


def test_local_to_team_to_local_loses_nothing(team_db, image_folder, tmp_path):
    _fill_local(image_folder, tmp_path)
    before = _local_dump(image_folder / ".segstudio")
    counts = create_team_project(image_folder, team_db.url("lena"))
    assert counts == {"images": 4, "masks": 2, "predictions": 2, "effort": 2, "model_versions": 1}

    back = tmp_path / "pulled_state"
    pull_team_project(team_db.url("alice"), image_folder, state_dir=back)
    after = _local_dump(back)
    assert after["images"] == before["images"]
    assert after["files"] == before["files"]
    assert after["settings"] == before["settings"]
    assert after["scheme"] == before["scheme"]
    assert after["versions"] == before["versions"]
    assert after["checkpoints"] == before["checkpoints"]
    assert after["effort"] == before["effort"]
    with Project.open(image_folder, state_dir=back) as pulled:  # and it opens as a normal project
        assert not pulled.last_reconcile.anything
        rec = pulled.get("a_cat.png")
        assert rec.status == Status.DONE
        assert np.array_equal(pulled.load_mask(rec), mask_of(3))


def test_round_trip_with_the_images_in_the_server_into_an_empty_folder(team_db, image_folder, tmp_path):
    """--store-images: the pull needs nothing but the URL, and brings the images back byte-exact."""
    _fill_local(image_folder, tmp_path)
    before = _local_dump(image_folder / ".segstudio")
    counts = create_team_project(image_folder, team_db.url("lena"), store_images=True)
    assert counts["image_files"] == 4
    elsewhere = tmp_path / "another machine" / "photos"
    pulled_counts = pull_team_project(team_db.url("alice"), elsewhere)
    assert pulled_counts["image_files"] == 4
    after = _local_dump(elsewhere / ".segstudio")
    for key in ("images", "files", "settings", "scheme", "versions", "checkpoints", "effort"):
        assert after[key] == before[key], key
    images = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.png")
                    if ".segstudio" not in p.parts)  # fmt: skip
    for rel in images:
        assert (elsewhere / rel).read_bytes() == (image_folder / rel).read_bytes()
    with Project.open(elsewhere) as pulled:
        assert not pulled.last_reconcile.anything
        assert np.array_equal(pulled.load_mask(pulled.get("a_cat.png")), mask_of(3))


def test_team_edits_come_back_in_a_pull(team_db, image_folder, tmp_path):
    _fill_local(image_folder, tmp_path)
    create_team_project(image_folder, team_db.url("lena"))
    with TeamProject.join(image_folder, team_db.url("alice"), state_dir=tmp_path / "alice") as team:
        rec = team.get("b_coffee.png")
        team.load_mask(rec)
        team.save_mask(rec, mask_of(7), Status.DONE)
        team.add_effort(rec, 3.0, {"polygon": 1}, 0.5)
    pull_team_project(team_db.url("lena"), image_folder, state_dir=tmp_path / "back")
    with Project.open(image_folder, state_dir=tmp_path / "back") as pulled:
        rec = pulled.get("b_coffee.png")
        assert rec.status == Status.DONE
        assert np.array_equal(pulled.load_mask(rec), mask_of(7))
        row = next(r for r in pulled.effort_rows() if r.rel_path == "b_coffee.png")
        assert row.seconds == pytest.approx(7.0)
        assert row.actions == {"polygon": 3}
        assert row.changed_fraction == 0.5


def test_create_refuses_a_database_that_already_holds_a_project(team_db, image_folder):
    create_team_project(image_folder, team_db.url("lena"))
    with pytest.raises(TeamError, match="already holds a team project"):
        create_team_project(image_folder, team_db.url("lena"))


def test_only_a_lead_creates(team_db, image_folder):
    with pytest.raises(TeamError, match="only a lead"):
        create_team_project(image_folder, team_db.url("alice"))


def test_pull_refuses_to_overwrite_a_local_project(team_db, image_folder):
    create_team_project(image_folder, team_db.url("lena"))
    with pytest.raises(Exception, match="already holds a local project"):
        pull_team_project(team_db.url("lena"), image_folder)


def test_a_failed_pull_leaves_no_half_made_project(team_db, image_folder, tmp_path, monkeypatch):
    from segstudio.team import transfer

    create_team_project(image_folder, team_db.url("lena"))

    def broken(conn, local):
        raise transfer.TeamError("simulated failure half-way")

    monkeypatch.setattr(transfer, "_download", broken)
    with pytest.raises(TeamError, match="half-way"):
        pull_team_project(team_db.url("lena"), image_folder, state_dir=tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()


def test_a_failed_create_leaves_the_database_empty(team_db, image_folder, monkeypatch):
    from segstudio.team import transfer
    from segstudio.team.schema import read_version

    def broken(conn, local):
        conn.execute("SELECT 1/0")

    monkeypatch.setattr(transfer, "_upload", broken)
    with pytest.raises(TeamError, match="nothing was kept"):
        create_team_project(image_folder, team_db.url("lena"))
    with team_db.raw("lena") as conn:
        assert read_version(conn) is None
