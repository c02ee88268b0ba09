"""Images kept in the team server (`team create --store-images`): joining with only the URL, fetched on
demand into this machine's cache with the hash checked, the member's queue fetched ahead, `team pull`
writing them back, and a lead adding images later (annotators refused by the server)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core import images as image_io
from segstudio.core.errors import ProjectError
from segstudio.core.hashing import content_hash
from segstudio.core.project import Project
from segstudio.team import image_store
from segstudio.team.adding import add_images
from segstudio.team.errors import TeamError, TeamPermissionError
from segstudio.team.image_store import ServerImages
from segstudio.team.project import TeamProject
from segstudio.team.transfer import create_team_project, pull_team_project

PHOTOS = ("a_cat.png", "b_coffee.png", "c_astronaut.png", "sub/d_rocket.png")


@pytest.fixture
def stored(team_db, image_folder):
    """A team project created with --store-images."""
    Project.open(image_folder).close()
    counts = create_team_project(image_folder, team_db.url("lena"), store_images=True)
    assert counts["image_files"] == 4
    assert counts["image_bytes"] == sum((image_folder / p).stat().st_size for p in PHOTOS)
    return team_db


def _no_temp_files(folder) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]


def test_join_from_an_empty_folder_fetches_the_image_with_its_hash_checked(stored, image_folder, tmp_path):
    empty = tmp_path / "laptop" / "streets"  # does not exist yet: joining needs only the URL
    cache = tmp_path / "alice-cache"
    with TeamProject.join(empty, stored.url("alice"), state_dir=cache, heartbeat=False) as alice:
        assert alice.images_in_server and empty.is_dir() and not any(empty.iterdir())
        rec = alice.get("sub/d_rocket.png")
        shown = alice.load_image(rec)
        original = image_folder / "sub/d_rocket.png"
        np.testing.assert_array_equal(shown, image_io.load_image(original))
        cached = cache / "images" / rec.content_hash
        assert alice.image_file(rec) == cached == alice.image_path(rec)
        assert cached.read_bytes() == original.read_bytes()
        assert content_hash(cached) == rec.content_hash
        assert alice.server_images.fetched_bytes == original.stat().st_size
        alice.load_image(rec)  # the second time from the cache
        assert alice.server_images.fetched_bytes == original.stat().st_size
        assert _no_temp_files(cache)


def test_same_photo_under_two_names_is_stored_once(team_db, image_folder):
    (image_folder / "copy_of_cat.png").write_bytes((image_folder / "a_cat.png").read_bytes())
    Project.open(image_folder).close()
    counts = create_team_project(image_folder, team_db.url("lena"), store_images=True)
    assert counts["images"] == 5 and counts["image_files"] == 4
    with team_db.raw("alice") as conn:
        assert conn.execute("SELECT count(*) FROM segstudio.image_blobs").fetchone() == (4,)


def test_a_damaged_cached_file_is_refused_and_fetched_again(stored, image_folder, tmp_path):
    cache = tmp_path / "alice-cache"
    with TeamProject.join(tmp_path / "empty", stored.url("alice"), state_dir=cache, heartbeat=False) as alice:
        rec = alice.get("a_cat.png")
        alice.load_image(rec)
        cached = alice.image_file(rec)
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte on this machine's disk
        cached.write_bytes(bytes(data))
        np.testing.assert_array_equal(alice.load_image(rec), image_io.load_image(image_folder / "a_cat.png"))
        assert cached.read_bytes() == (image_folder / "a_cat.png").read_bytes()
    # a new session (no memory of earlier checks) checks the cached file too
    cached.write_bytes(b"not the image")
    with TeamProject.join(tmp_path / "empty", stored.url("alice"), state_dir=cache, heartbeat=False) as alice:
        alice.load_image(alice.get("a_cat.png"))
        assert cached.read_bytes() == (image_folder / "a_cat.png").read_bytes()


def test_a_corrupt_transfer_is_refused_retried_and_never_half_written(
    stored, image_folder, tmp_path, monkeypatch
):
    real = ServerImages._download
    calls = []

    def flaky(self, rec):
        data = real(self, rec)
        calls.append(rec.rel_path)
        return data[:-7] if len(calls) == 1 else data  # the first transfer arrives cut short

    monkeypatch.setattr(ServerImages, "_download", flaky)
    cache = tmp_path / "alice-cache"
    with TeamProject.join(tmp_path / "empty", stored.url("alice"), state_dir=cache, heartbeat=False) as alice:
        rec = alice.get("b_coffee.png")
        alice.load_image(rec)
        assert calls == ["b_coffee.png", "b_coffee.png"]
        assert alice.image_file(rec).read_bytes() == (image_folder / "b_coffee.png").read_bytes()

        monkeypatch.setattr(ServerImages, "_download", lambda self, rec: b"\x89PNG garbage")
        other = alice.get("c_astronaut.png")
        with pytest.raises(TeamError, match="does not match its content hash"):
            alice.load_image(other)
        assert not (cache / "images" / other.content_hash).exists()
        assert _no_temp_files(cache)

        monkeypatch.setattr(ServerImages, "_download", real)

        def disk_full(src, dst):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(image_store.os, "replace", disk_full)  # the write is cut before its rename
        with pytest.raises(ProjectError, match=r"No space left on device.*free some space"):
            alice.load_image(other)
        assert not (cache / "images" / other.content_hash).exists()
        assert _no_temp_files(cache)


def test_the_members_queue_is_fetched_ahead_in_the_background(stored, tmp_path):
    with TeamProject.join(
        tmp_path / "lena-copy", stored.url("lena"), state_dir=tmp_path / "l", heartbeat=False
    ) as lena:
        recs = {r.rel_path: r for r in lena.images()}
        lena.assign([recs["c_astronaut.png"], recs["sub/d_rocket.png"]], ["alice"], "round-robin")
    fetchers: set[str] = set()
    real = ServerImages._download

    def recording(self, rec):
        fetchers.add(threading.current_thread().name)
        return real(self, rec)

    cache = tmp_path / "alice-cache"
    image_store_download = ServerImages._download
    try:
        ServerImages._download = recording  # type: ignore[method-assign]
        with TeamProject.join(tmp_path / "empty", stored.url("alice"), state_dir=cache) as alice:
            assert alice.prefetcher is None  # the window starts it; one-off commands do not
            assert alice.start_prefetch() is alice.prefetcher is not None
            assert alice.prefetcher.idle.wait(30), alice.prefetcher.errors
            cached = {p.name for p in (cache / "images").iterdir()}
            assert cached == {recs["c_astronaut.png"].content_hash, recs["sub/d_rocket.png"].content_hash}
            assert fetchers == {"segstudio-team-prefetch"}  # never the caller's thread
            assert not alice.prefetcher.errors
    finally:
        ServerImages._download = image_store_download  # type: ignore[method-assign]


def test_pull_writes_the_images_byte_exact(stored, image_folder, tmp_path, capsys):
    target = tmp_path / "pulled" / "streets"
    assert main(["team", "pull", stored.url("alice"), str(target)]) == 0
    assert "4 image_files" in capsys.readouterr().out
    for rel in PHOTOS:
        assert (target / rel).read_bytes() == (image_folder / rel).read_bytes()
    with Project.open(target) as pulled:
        assert not pulled.last_reconcile.anything  # size and time as recorded: nothing to re-read
        assert sorted(r.rel_path for r in pulled.images()) == sorted(PHOTOS)


def test_pull_never_overwrites_a_different_file(stored, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    Image.new("RGB", (8, 8)).save(target / "a_cat.png")
    with pytest.raises(ProjectError, match="already exists with other content"):
        pull_team_project(stored.url("alice"), target)
    assert sorted(p.name for p in target.iterdir()) == ["a_cat.png"]  # nothing written, no project


def test_an_image_too_large_for_the_server_is_refused_before_anything_is_sent(
    team_db, image_folder, monkeypatch
):
    monkeypatch.setattr(image_store, "MAX_IMAGE_BYTES", 1000)
    Project.open(image_folder).close()
    with pytest.raises(ProjectError, match="may be at most 1000 bytes each"):
        create_team_project(image_folder, team_db.url("lena"), store_images=True)
    with team_db.raw("lena") as conn:
        assert conn.execute("SELECT to_regclass('segstudio.images')").fetchone() == (None,)


def test_lead_adds_images_and_a_member_sees_and_opens_them(stored, image_folder, tmp_path, capsys):
    from segstudio.team.live import ChangeListener

    heard: list[tuple[str, int]] = []
    listener = ChangeListener(stored.url("alice"), lambda table, image: heard.append((table, image))).start()
    try:
        assert listener.listening.wait(10)
        with TeamProject.join(
            tmp_path / "empty", stored.url("alice"), state_dir=tmp_path / "a", heartbeat=False
        ) as alice:
            assert len(alice.images()) == 4
            Image.fromarray(np.full((20, 30, 3), 77, np.uint8)).save(image_folder / "sub" / "e_new.png")
            code = main(["team", "add", str(image_folder), "--db", stored.url("lena")])
            assert code == 0 and "added 1 image(s): sub/e_new.png" in capsys.readouterr().out
            rec = alice.get("sub/e_new.png")
            assert rec is not None and rec.status.value == "new" and rec.shape == (20, 30)
            assert len(alice.images()) == 5
            np.testing.assert_array_equal(alice.load_image(rec), np.full((20, 30, 3), 77, np.uint8))
            for _ in range(100):
                if ("images", rec.id) in heard:
                    break
                threading.Event().wait(0.1)
            assert ("images", rec.id) in heard  # members' windows hear of it at once
        # adding again finds nothing new
        assert main(["team", "add", str(image_folder), "--db", stored.url("lena")]) == 0
        assert "added 0 image(s)" in capsys.readouterr().out
    finally:
        listener.stop()


def test_store_images_later_uploads_what_the_server_lacks_resumably(
    team_db, image_folder, tmp_path, monkeypatch
):
    from segstudio.team import adding

    Project.open(image_folder).close()
    create_team_project(image_folder, team_db.url("lena"))  # images in a shared folder at first
    monkeypatch.setattr(adding, "CHUNK_BYTES", 1)  # one image per commit
    real = adding.upload_image
    calls = []

    def cut_off(cur, path, digest):
        calls.append(path.name)
        if len(calls) == 3:
            raise ConnectionResetError("the link dropped")  # the third upload never arrives
        return real(cur, path, digest)

    monkeypatch.setattr(adding, "upload_image", cut_off)
    sizes = {p.rsplit("/", 1)[-1]: (image_folder / p).stat().st_size for p in PHOTOS}
    with TeamProject.join(
        image_folder, team_db.url("lena"), state_dir=tmp_path / "l", heartbeat=False
    ) as lena:
        with pytest.raises(ConnectionResetError):
            add_images(lena, store_images=True)
        with team_db.raw("lena") as conn:  # the two committed chunks stay; the flag is not set yet
            assert conn.execute("SELECT count(*) FROM segstudio.image_blobs").fetchone() == (2,)
            assert conn.execute(
                "SELECT count(*) FROM segstudio.meta WHERE key = 'images_in_server'"
            ).fetchone() == (0,)
        monkeypatch.setattr(adding, "upload_image", real)
        report = add_images(lena, store_images=True)  # run again: only the rest goes up
        assert report.added == [] and report.image_files == 2
        assert report.image_bytes == sum(sizes.values()) - sizes[calls[0]] - sizes[calls[1]]
    with TeamProject.join(
        tmp_path / "empty", team_db.url("bob"), state_dir=tmp_path / "b", heartbeat=False
    ) as bob:
        rec = bob.get("a_cat.png")
        assert bob.image_file(rec).read_bytes() == (image_folder / "a_cat.png").read_bytes()


def test_annotators_cannot_add_images_or_write_image_bytes(stored, image_folder, tmp_path):
    import psycopg

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image_folder / "z_new.png")
    with TeamProject.join(
        image_folder, stored.url("alice"), state_dir=tmp_path / "a", heartbeat=False
    ) as alice:
        with pytest.raises(TeamPermissionError, match="may not add images"):
            add_images(alice)
        assert alice.get("z_new.png") is None
    for member in ("alice", "rita"):
        with stored.raw(member) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO segstudio.images(id, rel_path, sort_key, size, mtime_ns, content_hash, split, "
                    "created_at, updated_at) VALUES (99, 'z_new.png', 'z_new.png', 1, 1, 'x', 'train', 0, 0)"
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO segstudio.image_blobs(content_hash, size, data) VALUES ('x', 1, '\\x00')"
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE segstudio.image_blobs SET data = '\\x00', size = 1")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM segstudio.image_blobs")
            # reading is every member's right
            assert conn.execute("SELECT count(*) FROM segstudio.image_blobs").fetchone() == (4,)


def test_the_command_line_joins_a_new_folder_only_where_the_server_keeps_the_images(
    team_db, stored, image_folder, tmp_path, capsys, monkeypatch
):
    import segstudio.gui.app as app

    opened = []
    monkeypatch.setattr(
        app, "run_app", lambda folder, project_dir=None, db=None: opened.append((folder, db)) or 0
    )
    new = tmp_path / "new-laptop-folder"
    assert main([str(new), "--db", stored.url("alice")]) == 0
    assert opened == [(str(new), stored.url("alice"))]


def test_a_new_folder_is_refused_where_the_team_keeps_images_in_a_shared_folder(
    team_db, image_folder, tmp_path, capsys, monkeypatch
):
    import segstudio.gui.app as app

    Project.open(image_folder).close()
    create_team_project(image_folder, team_db.url("lena"))
    monkeypatch.setattr(app, "run_app", lambda *a, **k: pytest.fail("no window for a missing folder"))
    code = main([str(tmp_path / "nowhere"), "--db", team_db.url("alice")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_an_older_team_database_gets_image_storage_when_a_lead_opens_it(team_db, image_folder, tmp_path):
    from segstudio.team import schema

    Project.open(image_folder).close()
    create_team_project(image_folder, team_db.url("lena"))
    with team_db.raw("lena") as conn:  # back to the schema before image storage
        conn.execute("DROP TRIGGER notify_image_added ON segstudio.images")
        conn.execute("DROP FUNCTION segstudio.notify_image_added()")
        conn.execute("DROP TABLE segstudio.image_blobs")
        before_images = schema.MIGRATIONS.index(schema._IMAGE_BYTES)  # later steps are re-run too
        conn.execute("UPDATE segstudio.schema_version SET version = %s", (before_images,))
    with pytest.raises(TeamError, match="older schema"):
        TeamProject.join(image_folder, team_db.url("alice"), state_dir=tmp_path / "a", heartbeat=False)
    with TeamProject.join(
        image_folder, team_db.url("lena"), state_dir=tmp_path / "l", heartbeat=False
    ) as lena:
        assert lena.schema_version == schema.SCHEMA_VERSION
        assert add_images(lena, store_images=True).image_files == 4


def test_names_from_the_server_never_lead_out_of_the_cache_or_the_pulled_folder(stored, tmp_path):
    with stored.raw("lena") as conn:  # what a damaged (or hostile) team database could list
        conn.execute(
            "UPDATE segstudio.images SET content_hash = '../../escaped' WHERE rel_path = 'a_cat.png'"
        )
        conn.execute(
            "UPDATE segstudio.images SET rel_path = '../escaped.png' WHERE rel_path = 'b_coffee.png'"
        )
    cache = tmp_path / "deep" / "cache"
    alice = TeamProject.join(tmp_path / "empty", stored.url("alice"), state_dir=cache, heartbeat=False)
    with alice, pytest.raises(ProjectError, match="not a SegStudio image hash"):
        alice.load_image(alice.get("a_cat.png"))
    with pytest.raises(ProjectError, match="not a file inside"):
        pull_team_project(stored.url("alice"), tmp_path / "pulled" / "here")
    assert not list(tmp_path.rglob("escaped*"))
    assert not (tmp_path / "pulled").exists() or not any((tmp_path / "pulled").rglob("*.png"))


def test_a_hostile_server_cannot_make_a_member_read_or_write_outside_the_folders(stored, tmp_path, capsys):
    """Image paths and checkpoint names are the server's words: a stranger's team database naming
    '../' or absolute paths gets a clear refusal, and no file outside the member's folders is touched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(secret)
    with stored.raw("lena") as conn:
        conn.execute(
            "UPDATE segstudio.images SET rel_path = %s WHERE rel_path = 'b_coffee.png'", (str(secret),)
        )
        conn.execute(
            "INSERT INTO segstudio.model_versions(version, checkpoint_name, checkpoint, arch, metrics, created_at) "
            "VALUES ('v9', %s, %s, 'lraspp_mobilenet_v3', '{}', 1)",
            (f"../../{outside.name}/evil.pt", b"not a checkpoint"),
        )
    member = tmp_path / "member"
    with TeamProject.join(
        tmp_path / "photos", stored.url("alice"), state_dir=member, heartbeat=False
    ) as alice:
        rec = alice.get(str(secret))
        assert rec is not None
        with pytest.raises(ProjectError, match="not a file inside"):
            alice.load_image(rec)
        with pytest.raises(ProjectError, match="not a file inside"):
            alice.get_model_version("v9")
        assert alice.get("a_cat.png") is not None  # the rest of the project still works
    with pytest.raises(ProjectError, match="not a file inside"):
        pull_team_project(stored.url("alice"), tmp_path / "pulled")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.png"]
