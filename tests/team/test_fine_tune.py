"""Fine-tuning a team project against the real server: an annotator trains on the accepted images, the
version lands on the server without being activated, only a lead activates it (proven through a raw
connection too), and another member's open session sees the new active version and fetches its weights."""

from __future__ import annotations

import json

import psycopg
import pytest

from segstudio.cli import main
from segstudio.core.project import Status
from segstudio.ml.weights import load_checkpoint
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project
from tests.team.conftest import mask_of

ARCH = "lraspp_mobilenet_v3_large"
FAST = ["--epochs", "1", "--crop", "32", "--batch", "2", "--workers", "0", "--min-iters", "2",
        "--device", "cpu", "--max-side", "48", "--base", "scratch", "--arch", ARCH]  # fmt: skip


@pytest.fixture
def reviewed(team_db, image_folder, monkeypatch, tmp_path):
    """alice finished all 4 images; rita accepted 3 and rejected d_rocket; every image in train but one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "lena-cache"))
    create_team_project(image_folder, team_db.url("lena"))
    with TeamProject.join(image_folder, team_db.url("lena"), heartbeat=False) as lena:
        for rec in lena.images():
            lena.set_split(rec, "val" if rec.rel_path == "c_astronaut.png" else "train")
    with TeamProject.join(image_folder, team_db.url("alice"), heartbeat=False) as alice:
        for value, rec in enumerate(alice.images(), start=1):
            alice.load_mask(rec)
            alice.save_mask(rec, mask_of(value % 2), Status.DONE)
    with TeamProject.join(image_folder, team_db.url("rita"), heartbeat=False) as rita:
        for rec in rita.images():
            rita.review(
                rec, rec.rel_path != "sub/d_rocket.png", "" if rec.rel_path != "sub/d_rocket.png" else "no"
            )
    return team_db


def test_a_member_trains_on_accepted_images_and_only_a_lead_activates(
    reviewed, image_folder, monkeypatch, tmp_path, capsys
):
    team = reviewed
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "bob-cache"))
    bob = TeamProject.join(image_folder, team.url("bob"), heartbeat=False)  # a second client, open throughout
    try:
        assert bob.active_model_version() is None
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "alice-cache"))
        # an annotator may not ask for activation: refused before any training
        assert main(["train", str(image_folder), "--db", team.url("alice"), "--activate", "yes", *FAST]) == 2
        assert "only a lead activates" in capsys.readouterr().err
        assert main(["train", str(image_folder), "--db", team.url("alice"), *FAST]) == 0
        capsys.readouterr()

        with team.raw("alice") as alice:
            version, author, size = alice.execute(
                "SELECT version, author, length(checkpoint) FROM segstudio.model_versions"
            ).fetchone()
            assert (version, author) == ("v1", "alice") and size > 100_000
            assert (
                alice.execute(
                    "SELECT value FROM segstudio.settings WHERE key = 'active_model_version'"
                ).fetchone()
                is None
            )
            # the rules hold for psql: no activating, no changing or faking versions
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                alice.execute(
                    "INSERT INTO segstudio.settings(key, value) VALUES ('active_model_version', '\"v1\"')"
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                alice.execute("UPDATE segstudio.model_versions SET metrics = '{}'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                alice.execute(
                    "INSERT INTO segstudio.model_versions(version, checkpoint_name, arch, metrics, created_at, author) "
                    "VALUES ('v9', 'x.pt', 'a', '{}', 0, 'lena')"
                )
        # trained on exactly the accepted images: 2 train + 1 val, never the rejected rocket
        with TeamProject.join(image_folder, team.url("alice"), heartbeat=False) as alice_project:
            manifest = json.loads((alice_project.models_dir / "v1" / "manifest.json").read_text())
        assert sorted(s["key"] for s in manifest["train"]) == ["a_cat.png", "b_coffee.png"]
        assert [s["key"] for s in manifest["val"]] == ["c_astronaut.png"]

        assert main(["team", "activate", str(image_folder), "v1", "--db", team.url("alice")]) == 2
        assert "only a lead activates" in capsys.readouterr().err
        assert bob.active_model_version() is None
        assert main(["team", "activate", str(image_folder), "v1", "--db", team.url("lena")]) == 0
        active = bob.active_model_version()
        assert active is not None and active.version == "v1"
        assert str(active.checkpoint_path).startswith(str(tmp_path / "bob-cache"))
        assert load_checkpoint(active.checkpoint_path).arch == ARCH  # fetched into bob's own cache
    finally:
        bob.close()


def test_training_without_accepted_images_says_what_to_do(
    team_db, image_folder, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    create_team_project(image_folder, team_db.url("lena"))
    assert main(["train", str(image_folder), "--db", team_db.url("alice"), *FAST]) == 2
    assert "no accepted images" in capsys.readouterr().err
