from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from segstudio.core import store_reconcile, store_schema
from segstudio.core.errors import ImageReadError, MaskError, ProjectError, SchemeError
from segstudio.core.project import (
    SCHEMA_VERSION,
    STATE_DIR_NAME,
    ImageRecord,
    Project,
    Status,
    content_hash,
    split_for_hash,
)
from segstudio.core.schemes import ClassDef, LabelScheme, cityscapes_scheme, voc_scheme
from tests.fakes import RecordingTask


def _mask_for(rec: ImageRecord, value: int) -> np.ndarray:
    mask = np.full(rec.shape, 255, dtype=np.uint8)
    mask[: rec.height // 2] = value
    return mask


def test_open_lists_images_recursively_in_natural_order(photo_dir: Path) -> None:
    (photo_dir / ".DS_Store").write_bytes(b"\x00\x01")
    (photo_dir / ".hidden_dir").mkdir()
    (photo_dir / ".hidden_dir" / "x.png").write_bytes(b"")
    (photo_dir / "notes.txt").write_text("not an image")
    (photo_dir / "._img2.jpg").write_bytes(b"resource fork")
    with Project.open(photo_dir) as project:
        paths = [r.rel_path for r in project.images()]
        assert paths == ["img1.png", "img2.jpg", "img10.jpg", "sub/img1.jpg"]
        assert project.state_dir == photo_dir / STATE_DIR_NAME
        assert project.image_dir == photo_dir.absolute()
        rec = project.get("img2.jpg")
        assert rec is not None and (rec.width, rec.height) == (512, 512) and rec.error is None
        assert rec.status is Status.NEW and rec.split in ("train", "val")
        assert rec.content_hash == content_hash(photo_dir / "img2.jpg")
        assert project.get_by_id(rec.id) == rec
        assert project.get("nope.jpg") is None
        assert project.load_image(rec).shape == (512, 512, 3)
        assert project.image_path(rec) == photo_dir / "img2.jpg"
        assert project.counts() == {s: (4 if s is Status.NEW else 0) for s in Status}
        assert sorted(project.last_reconcile.added) == sorted(paths)


def test_masks_predictions_and_statuses_survive_reopen(photo_dir: Path, rng) -> None:
    with Project.open(photo_dir) as project:
        rec = project.get("img10.jpg")
        assert project.load_mask(rec) is None and project.load_prediction(rec) is None
        labels = rng.integers(0, 21, rec.shape, dtype=np.uint8)
        raw = rng.integers(0, 21, rec.shape, dtype=np.uint8)
        conf = rng.integers(0, 256, rec.shape, dtype=np.uint8)
        rec = project.save_prediction(rec, labels, conf, "v1", raw_labels=raw)
        assert rec.status is Status.PREDICTED and rec.model_version == "v1"
        assert rec.mean_confidence == pytest.approx(conf.mean() / 255)
        assert not project.has_mask(rec)  # a prediction is not a correction
        corrected = labels.copy()
        corrected[:10] = 3
        rec = project.save_mask(rec, corrected)
        assert rec.status is Status.IN_PROGRESS and project.has_mask(rec)
        rec = project.set_status(rec, Status.DONE)
        # A new prediction never overwrites the corrected mask and keeps the status.
        rec = project.save_prediction(rec, np.zeros(rec.shape, np.uint8), conf, "v2")
        assert rec.status is Status.DONE and rec.model_version == "v2"
        skipped = project.set_status(project.get("img1.png"), "skipped")
        before = project.images()
    with Project.open(photo_dir) as project:
        assert project.images() == before  # reopening restores exactly
        rec = project.get("img10.jpg")
        assert np.array_equal(project.load_mask(rec), corrected)
        prediction = project.load_prediction(rec)
        assert np.array_equal(prediction.labels, np.zeros(rec.shape, np.uint8))
        assert np.array_equal(prediction.confidence, conf)
        assert prediction.raw_labels is None  # the v2 prediction had no raw labels
        assert project.get_by_id(skipped.id).status is Status.SKIPPED
        assert project.counts()[Status.DONE] == 1 and project.counts()[Status.SKIPPED] == 1
        assert [r.rel_path for r in project.images(status=Status.DONE)] == ["img10.jpg"]


def test_save_mask_refuses_wrong_shape_and_dtype(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        rec = project.get("img2.jpg")
        with pytest.raises(MaskError, match="512x512"):
            project.save_mask(rec, np.zeros((10, 10), np.uint8))
        with pytest.raises(MaskError, match="uint8"):
            project.save_mask(rec, np.zeros(rec.shape, np.int64))
        assert not project.has_mask(rec) and project.get("img2.jpg").status is Status.NEW


def test_delete_mask_returns_to_prediction(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        rec = project.get("img2.jpg")
        rec = project.save_prediction(
            rec, np.ones(rec.shape, np.uint8), np.full(rec.shape, 200, np.uint8), "v1"
        )
        rec = project.save_mask(rec, _mask_for(rec, 4))
        rec = project.delete_mask(rec)
        assert not project.has_mask(rec) and rec.status is Status.PREDICTED
        assert project.load_prediction(rec) is not None


def test_reconcile_add_remove_rename_with_masks_following(photo_dir: Path, write_image, rng) -> None:
    with Project.open(photo_dir) as project:
        renamed = project.get("img10.jpg")
        renamed = project.save_mask(renamed, _mask_for(renamed, 8), status=Status.DONE)
        removed = project.save_mask(project.get("img1.png"), _mask_for(project.get("img1.png"), 2))
        moved = project.save_mask(project.get("sub/img1.jpg"), _mask_for(project.get("sub/img1.jpg"), 5))
    (photo_dir / "img10.jpg").rename(photo_dir / "chelsea cat.jpg")
    (photo_dir / "sub" / "deeper").mkdir()
    (photo_dir / "sub" / "img1.jpg").rename(photo_dir / "sub" / "deeper" / "coffee.jpg")
    (photo_dir / "img1.png").unlink()
    write_image(photo_dir / "new" / "img3.png", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    with Project.open(photo_dir) as project:
        report = project.last_reconcile
        assert sorted(report.renamed) == [
            ("img10.jpg", "chelsea cat.jpg"),
            ("sub/img1.jpg", "sub/deeper/coffee.jpg"),
        ]
        assert report.added == ["new/img3.png"] and report.removed == ["img1.png"]
        assert [r.rel_path for r in project.images()] == [
            "chelsea cat.jpg",
            "img2.jpg",
            "new/img3.png",
            "sub/deeper/coffee.jpg",
        ]
        cat = project.get("chelsea cat.jpg")
        assert cat.id == renamed.id and cat.status is Status.DONE and cat.split == renamed.split
        assert np.array_equal(project.load_mask(cat), _mask_for(cat, 8))
        assert np.array_equal(project.load_mask(project.get("sub/deeper/coffee.jpg")), _mask_for(moved, 5))
        assert project.get("img1.png") is None and project.get_by_id(removed.id) is None
        assert project.get("new/img3.png").status is Status.NEW
        with pytest.raises(ProjectError, match="no longer part of the project"):
            project.save_mask(removed, _mask_for(removed, 1))


def test_removed_image_that_comes_back_gets_its_mask_back(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        rec = project.get("img1.png")
        rec = project.save_mask(rec, _mask_for(rec, 2), status=Status.DONE)
    data = (photo_dir / "img1.png").read_bytes()
    (photo_dir / "img1.png").unlink()
    with Project.open(photo_dir) as project:
        assert project.last_reconcile.removed == ["img1.png"] and project.get("img1.png") is None
        assert project.counts()[Status.DONE] == 0
    (photo_dir / "restored").mkdir()
    (photo_dir / "restored" / "rocket.png").write_bytes(data)
    with Project.open(photo_dir) as project:
        assert project.last_reconcile.restored == ["restored/rocket.png"]
        back = project.get("restored/rocket.png")
        assert back.id == rec.id and back.status is Status.DONE
        assert np.array_equal(project.load_mask(back), _mask_for(rec, 2))


def test_duplicate_content_gets_its_own_record(photo_dir: Path) -> None:
    shutil.copy2(photo_dir / "img2.jpg", photo_dir / "img2 copy.jpg")
    with Project.open(photo_dir) as project:
        a, b = project.get("img2.jpg"), project.get("img2 copy.jpg")
        assert a.id != b.id and a.content_hash == b.content_hash and a.split == b.split


def test_unchanged_files_are_not_rehashed_on_reopen(photo_dir: Path, monkeypatch) -> None:
    with Project.open(photo_dir):
        pass
    calls: list[Path] = []
    original = store_reconcile.content_hash
    monkeypatch.setattr(store_reconcile, "content_hash", lambda p: calls.append(Path(p)) or original(p))
    with Project.open(photo_dir) as project:
        assert calls == [] and not project.last_reconcile.anything
    # Touching one file (new mtime) rehashes just that file; same content -> 'changed' but same record.
    path = photo_dir / "img2.jpg"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    with Project.open(photo_dir) as project:
        assert calls == [path.absolute()]
        assert project.last_reconcile.changed == ["img2.jpg"]


def test_changed_content_updates_size_and_hash(photo_dir: Path, write_image, rng) -> None:
    with Project.open(photo_dir) as project:
        old = project.get("img2.jpg")
    write_image(photo_dir / "img2.jpg", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    with Project.open(photo_dir) as project:
        new = project.get("img2.jpg")
        assert (
            new.id == old.id and (new.width, new.height) == (30, 20) and new.content_hash != old.content_hash
        )


def test_unreadable_images_are_listed_with_reason(photo_dir: Path) -> None:
    (photo_dir / "broken.jpg").write_text("text, not a JPEG")
    (photo_dir / "empty.png").write_bytes(b"")
    with Project.open(photo_dir) as project:
        broken = project.get("broken.jpg")
        assert broken is not None and broken.width is None and "not an image" in broken.error
        assert "empty file" in project.get("empty.png").error
        assert project.get("img2.jpg").error is None
        assert project.summary()["unreadable"] == 2


def test_splits_are_stable_and_follow_the_fraction(tmp_path: Path, write_image) -> None:
    folder = tmp_path / "many"
    for i in range(200):
        write_image(
            folder / f"{i}.png",
            np.full((2, 2, 3), i, dtype=np.uint8) + np.array([0, i % 7, i % 11], np.uint8),
        )
    with Project.open(folder) as project:
        splits = {r.rel_path: r.split for r in project.images()}
        val = sum(s == "val" for s in splits.values())
        assert 20 <= val <= 60  # ~20% of 200
        for rec in project.images():
            assert rec.split == split_for_hash(rec.content_hash, 0.2)
        project.set_setting("val_fraction", 0.5)
        val_half = sum(r.split == "val" for r in project.images())
        assert 70 <= val_half <= 130
        # Growing the fraction only moves images from train to val.
        assert all(r.split == "val" for r in project.images() if splits[r.rel_path] == "val")
        with pytest.raises(ProjectError, match="between 0 and 1"):
            project.set_setting("val_fraction", 1.5)
    with Project.open(folder) as project:
        assert project.val_fraction == 0.5 and sum(r.split == "val" for r in project.images()) == val_half


def test_settings_scheme_and_model_versions(photo_dir: Path, tmp_path: Path) -> None:
    custom = LabelScheme("weeds", (ClassDef("soil", (1, 2, 3)), ClassDef("crop", (0, 255, 0), 9)))
    with Project.open(photo_dir, scheme=custom) as project:
        assert project.scheme == custom
        project.set_setting("crf", {"enabled": True, "iterations": 5})
        assert project.get_setting("missing", 42) == 42
        assert project.next_version_name() == "v1"
        ckpt = project.models_dir / "v1.pt"
        ckpt.write_bytes(b"fake")
        v1 = project.add_model_version("v1", ckpt, "deeplabv3_resnet50", {"miou": 0.5}, None)
        assert v1.checkpoint_path == ckpt
        project.add_model_version("v2", tmp_path / "elsewhere.pt", "fcn_resnet50", {"miou": 0.6}, "v1")
        with pytest.raises(ProjectError, match="already exists"):
            project.add_model_version("v2", ckpt, "x", {}, None)
        assert project.next_version_name() == "v3"
        project.set_active_model_version("v2")
        with pytest.raises(ProjectError, match="unknown model version 'v9'"):
            project.set_active_model_version("v9")
        with pytest.raises(ProjectError, match="JSON"):
            project.set_setting("bad", object())
    with Project.open(photo_dir) as project:
        assert project.scheme == custom
        assert project.get_setting("crf") == {"enabled": True, "iterations": 5}
        versions = project.model_versions()
        assert [v.version for v in versions] == ["v1", "v2"]
        assert versions[0].checkpoint_path == project.models_dir / "v1.pt"
        assert versions[1].checkpoint_path == tmp_path / "elsewhere.pt" and versions[1].parent == "v1"
        assert versions[1].metrics == {"miou": 0.6}
        assert project.active_model_version().version == "v2"
        project.set_active_model_version(None)
        assert project.active_model_version() is None


def test_scheme_conflict_with_existing_labels(photo_dir: Path) -> None:
    with Project.open(photo_dir, scheme="voc") as project:
        assert project.scheme == voc_scheme()
    with Project.open(photo_dir, scheme="cityscapes") as project:  # no labels yet: switching is fine
        assert project.scheme == cityscapes_scheme()
        rec = project.get("img2.jpg")
        project.save_mask(rec, _mask_for(rec, 1))
    with pytest.raises(ProjectError, match="already uses the label scheme 'cityscapes'"):
        Project.open(photo_dir, scheme="voc")
    with Project.open(photo_dir) as project:  # the failed open released the lock
        assert project.scheme.name == "cityscapes"
        project.set_scheme(voc_scheme())  # an explicit change inside the project is allowed
        assert project.scheme == voc_scheme()
    with pytest.raises(SchemeError, match="unknown scheme"):
        Project.open(photo_dir, scheme="nope")


def test_non_ascii_and_space_paths(tmp_path: Path, real_photo, write_image) -> None:
    folder = tmp_path / "Mes Données" / "日本 語 photos"
    write_image(folder / "chat été.jpg", real_photo("chelsea"), quality=90)
    write_image(folder / "Ünter Ordner" / "фото 1.png", real_photo("rocket"))
    with Project.open(folder) as project:
        assert [r.rel_path for r in project.images()] == ["chat été.jpg", "Ünter Ordner/фото 1.png"]
        rec = project.get("Ünter Ordner/фото 1.png")
        project.save_mask(rec, _mask_for(rec, 3))
    with Project.open(folder) as project:
        rec = project.get("Ünter Ordner/фото 1.png")
        assert np.array_equal(project.load_mask(rec), _mask_for(rec, 3))


def test_read_only_folder_needs_a_chosen_state_dir(photo_dir: Path, tmp_path: Path, monkeypatch) -> None:
    for path in [photo_dir, *photo_dir.rglob("*")]:
        if path.is_dir():
            path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(photo_dir, os.W_OK):  # root ignores permissions: simulate a read-only file system
        real_mkdir = Path.mkdir

        def mkdir(self: Path, *args, **kwargs):
            if self.parent == photo_dir.absolute():
                raise OSError(30, "Read-only file system")
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    try:
        with pytest.raises(ProjectError, match="Choose a project folder") as info:
            Project.open(photo_dir)
        assert "--project-dir" in str(info.value)
        state = tmp_path / "my project ü"
        with Project.open(photo_dir, state_dir=state) as project:
            assert project.state_dir == state
            assert len(project.images()) == 4
            rec = project.get("img2.jpg")
            project.save_mask(rec, _mask_for(rec, 6))
        assert (state / "project.db").is_file() and not (photo_dir / STATE_DIR_NAME).exists()
        with Project.open(photo_dir, state_dir=state) as project:
            assert np.array_equal(project.load_mask(project.get("img2.jpg")), _mask_for(rec, 6))
    finally:
        for path in [photo_dir, *photo_dir.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)


def test_state_dir_inside_image_folder_is_not_scanned(photo_dir: Path) -> None:
    with Project.open(photo_dir, state_dir=photo_dir / "annotations") as project:
        rec = project.get("img2.jpg")
        project.save_mask(rec, _mask_for(rec, 1))
        project.thumbnails_dir.joinpath("t.png").write_bytes(b"x")
    with Project.open(photo_dir, state_dir=photo_dir / "annotations") as project:
        assert all(not r.rel_path.startswith("annotations/") for r in project.images())
        assert not project.last_reconcile.anything


def test_state_dir_of_another_folder_is_refused(photo_dir: Path, tmp_path: Path, write_image, rng) -> None:
    other = tmp_path / "other"
    write_image(other / "a.png", rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    state = tmp_path / "state"
    with Project.open(photo_dir, state_dir=state):
        pass
    with pytest.raises(ProjectError, match="belongs to the image folder"):
        Project.open(other, state_dir=state)


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "nope")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(ProjectError, match="is not a folder"):
        Project.open(tmp_path / "file.jpg")


def test_empty_folder(tmp_path: Path) -> None:
    with Project.open(tmp_path) as project:
        assert project.images() == [] and len(project) == 0
        assert project.summary()["images"] == 0


def test_closed_project_raises_clear_error(photo_dir: Path) -> None:
    project = Project.open(photo_dir)
    project.close()
    project.close()  # idempotent
    with pytest.raises(ProjectError, match="closed"):
        project.images()


def test_progress_is_reported_while_hashing(tmp_path: Path, write_image) -> None:
    for i in range(40):
        write_image(tmp_path / f"{i}.png", np.full((3, 3, 3), i, dtype=np.uint8))
    task = RecordingTask()
    with Project.open(tmp_path, handle=task) as project:
        assert len(project) == 40
    assert task.progress[-1] == (40, 40) and task.statuses


def test_threads_can_share_the_project(photo_dir: Path) -> None:
    errors: list[BaseException] = []
    with Project.open(photo_dir) as project:
        records = project.images()

        def work(rec: ImageRecord, value: int) -> None:
            try:
                for i in range(5):
                    project.save_mask(rec, _mask_for(rec, (value + i) % 21))
                    project.counts()
                    project.set_setting(f"k{value}", i)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(rec, n)) for n, rec in enumerate(records)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        for n, rec in enumerate(records):
            assert np.array_equal(project.load_mask(rec), _mask_for(rec, (n + 4) % 21))
            assert project.get_setting(f"k{n}") == 4


# ---------------------------------------------------------------------------------- schema


def test_schema_version_is_recorded_and_wal_enabled(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        assert project.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(photo_dir / STATE_DIR_NAME / "project.db")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_migrations_run_in_order_on_older_projects(photo_dir: Path, monkeypatch) -> None:
    with Project.open(photo_dir) as project:
        rec = project.save_mask(project.get("img2.jpg"), _mask_for(project.get("img2.jpg"), 7))

    def add_note_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE images ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated'")

    monkeypatch.setattr(store_schema, "MIGRATIONS", [*store_schema.MIGRATIONS, add_note_column])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Project.open(photo_dir) as project:
        assert project.schema_version == SCHEMA_VERSION + 1
        assert project.get("img2.jpg").status is Status.IN_PROGRESS  # data kept
        assert np.array_equal(project.load_mask(rec), _mask_for(rec, 7))
        notes = {row[0] for row in project._db.execute("SELECT note FROM images")}
        assert notes == {"migrated"}


def test_failed_migration_rolls_back(photo_dir: Path, monkeypatch) -> None:
    with Project.open(photo_dir):
        pass

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE images ADD COLUMN half TEXT")
        raise RuntimeError("bug in migration")

    monkeypatch.setattr(store_schema, "MIGRATIONS", [*store_schema.MIGRATIONS, broken])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="bug in migration"):
        Project.open(photo_dir)
    monkeypatch.undo()
    with Project.open(photo_dir) as project:  # still the old version, unchanged, and unlocked
        assert project.schema_version == SCHEMA_VERSION
        columns = [row[1] for row in project._db.execute("PRAGMA table_info(images)")]
        assert "half" not in columns


def test_newer_schema_is_refused(photo_dir: Path) -> None:
    with Project.open(photo_dir):
        pass
    conn = sqlite3.connect(photo_dir / STATE_DIR_NAME / "project.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(ProjectError, match="newer SegStudio"):
        Project.open(photo_dir)


def test_damaged_database_gives_clear_error(photo_dir: Path) -> None:
    state = photo_dir / STATE_DIR_NAME
    state.mkdir()
    (state / "project.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(ProjectError, match="damaged"):
        Project.open(photo_dir)


def test_image_replaced_by_other_dimensions_moves_masks_aside(photo_dir: Path, write_image, rng) -> None:
    with Project.open(photo_dir) as project:
        rec = project.get("img2.jpg")
        rec = project.save_prediction(
            rec, np.ones(rec.shape, np.uint8), np.full(rec.shape, 9, np.uint8), "v1"
        )
        rec = project.save_mask(rec, _mask_for(rec, 4), status=Status.DONE)
        same = project.save_mask(project.get("img10.jpg"), _mask_for(project.get("img10.jpg"), 2))
    write_image(photo_dir / "img2.jpg", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    # img10 gets new content with the same size: its mask still fits and stays.
    write_image(photo_dir / "img10.jpg", rng.integers(0, 256, (300, 451, 3), dtype=np.uint8))
    with Project.open(photo_dir) as project:
        assert project.last_reconcile.invalidated == ["img2.jpg"]
        assert sorted(project.last_reconcile.changed) == ["img10.jpg", "img2.jpg"]
        new = project.get("img2.jpg")
        assert new.status is Status.NEW and new.model_version is None and project.load_mask(new) is None
        assert project.load_prediction(new) is None
        stale = list((project.state_dir / "stale").iterdir())
        assert len(stale) == 1 and sorted(p.name for p in stale[0].iterdir()) == [
            "confidence.png",
            "mask.png",
            "prediction.png",
        ]
        assert np.array_equal(project.load_mask(project.get("img10.jpg")), _mask_for(same, 2))


def test_raising_the_pixel_cap_rereads_too_large_images(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        project.set_setting("max_pixels", 200_000)
        assert "too large" in project.get("img2.jpg").error  # 512 x 512 > 200,000
        assert project.get("img10.jpg").error is None  # 451 x 300 fits
        with pytest.raises(ImageReadError, match="too large"):
            project.load_image(project.get("img2.jpg"))
        project.set_setting("max_pixels", None)
        assert project.get("img2.jpg").error is None and project.get("img2.jpg").width == 512
        with pytest.raises(ProjectError, match="positive whole number"):
            project.set_setting("max_pixels", -5)


def test_unknown_status_is_a_clear_error(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        with pytest.raises(ProjectError, match="unknown image status 'finished'; use one of: new, predicted"):
            project.set_status(project.get("img2.jpg"), "finished")
        with pytest.raises(ProjectError, match="unknown image status"):
            project.images(status="bogus")


def test_read_only_view_never_writes(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        project.set_status(project.get("img2.jpg"), Status.DONE)
        with Project.open_read_only(photo_dir) as view:  # no lock needed
            assert view.get("img2.jpg").status is Status.DONE and view.scheme == project.scheme
            with pytest.raises(ProjectError, match="read-only"):
                view.set_status(view.get("img2.jpg"), Status.NEW)
            with pytest.raises(ProjectError, match="read-only"):
                view.save_mask(view.get("img2.jpg"), np.zeros((512, 512), np.uint8))
            assert not view.has_mask(view.get("img2.jpg"))
    with pytest.raises(ProjectError, match="no SegStudio project"):
        Project.open_read_only(photo_dir / "sub")


def _distinct_images(folder: Path, names: list[str], write_image) -> None:
    for i, name in enumerate(names):
        pixels = np.zeros((10 + i, 16, 3), dtype=np.uint8)  # distinct content (and size) per file
        pixels[..., 0] = 40 * i
        write_image(folder / name, pixels)


def _label_all(project: Project) -> dict[str, int]:
    """Give every image a mask whose value encodes its record id; return rel_path -> id."""
    ids = {}
    for rec in project.images():
        project.save_mask(rec, np.full(rec.shape, rec.id % 200, np.uint8))
        ids[rec.rel_path] = rec.id
    return ids


def test_swapped_names_keep_masks_with_their_content(tmp_path: Path, write_image) -> None:
    folder = tmp_path / "swap"
    _distinct_images(folder, ["a.png", "b.png", "c.png"], write_image)
    with Project.open(folder) as project:
        before = {r.rel_path: r for r in project.images()}
        _label_all(project)
    (folder / "a.png").rename(folder / "tmp.png")
    (folder / "b.png").rename(folder / "a.png")
    (folder / "tmp.png").rename(folder / "b.png")
    with Project.open(folder) as project:
        assert sorted(project.last_reconcile.renamed) == [("a.png", "b.png"), ("b.png", "a.png")]
        assert not project.last_reconcile.added and not project.last_reconcile.removed
        for new_name, old_name in (("a.png", "b.png"), ("b.png", "a.png"), ("c.png", "c.png")):
            rec = project.get(new_name)
            assert rec.id == before[old_name].id and rec.content_hash == before[old_name].content_hash
            assert rec.shape == before[old_name].shape
            mask = project.load_mask(rec)  # fits the image (shape checked) and is the one drawn on it
            assert mask is not None and int(mask[0, 0]) == before[old_name].id % 200


def test_renumbered_sequence_after_a_deletion(tmp_path: Path, write_image) -> None:
    folder = tmp_path / "seq"
    _distinct_images(folder, ["1.png", "2.png", "3.png"], write_image)
    with Project.open(folder) as project:
        ids = _label_all(project)
        hashes = {r.rel_path: r.content_hash for r in project.images()}
    (folder / "1.png").unlink()
    (folder / "2.png").rename(folder / "1.png")
    (folder / "3.png").rename(folder / "2.png")
    with Project.open(folder) as project:
        report = project.last_reconcile
        assert sorted(report.renamed) == [("2.png", "1.png"), ("3.png", "2.png")]
        assert report.removed == ["1.png"] and not report.added
        assert [r.rel_path for r in project.images()] == ["1.png", "2.png"]
        assert (
            project.get("1.png").id == ids["2.png"] and project.get("1.png").content_hash == hashes["2.png"]
        )
        assert project.get("2.png").id == ids["3.png"]
        assert project.get_by_id(ids["1.png"]) is None
        assert int(project.load_mask(project.get("1.png"))[0, 0]) == ids["2.png"] % 200


def test_in_place_edit_keeps_the_record(tmp_path: Path, write_image) -> None:
    folder = tmp_path / "edit"
    _distinct_images(folder, ["a.png", "b.png"], write_image)
    with Project.open(folder) as project:
        ids = _label_all(project)
    pixels = np.full((10, 16, 3), 99, dtype=np.uint8)  # same size as a.png, new content
    write_image(folder / "a.png", pixels)
    with Project.open(folder) as project:
        assert project.last_reconcile.changed == ["a.png"] and not project.last_reconcile.renamed
        rec = project.get("a.png")
        assert rec.id == ids["a.png"] and project.load_mask(rec) is not None


def test_moved_into_subfolder_and_replaced_by_other_content(tmp_path: Path, write_image) -> None:
    folder = tmp_path / "mv"
    _distinct_images(folder, ["a.png", "b.png"], write_image)
    with Project.open(folder) as project:
        ids = _label_all(project)
    (folder / "old").mkdir()
    (folder / "a.png").rename(folder / "old" / "a.png")
    write_image(folder / "a.png", np.full((50, 50, 3), 7, dtype=np.uint8))  # unrelated new image, same name
    with Project.open(folder) as project:
        report = project.last_reconcile
        assert report.renamed == [("a.png", "old/a.png")] and report.added == ["a.png"]
        assert project.get("old/a.png").id == ids["a.png"]
        fresh = project.get("a.png")
        assert (
            fresh.id not in ids.values() and fresh.status is Status.NEW and project.load_mask(fresh) is None
        )


def test_exif_rotated_image_records_display_size(tmp_path: Path, real_photo) -> None:
    from PIL import Image

    folder = tmp_path / "phone"
    folder.mkdir()
    img = Image.fromarray(real_photo("rocket"))  # stored 640 x 427
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(folder / "portrait.jpg", quality=90, exif=exif.tobytes())
    with Project.open(folder) as project:
        rec = project.get("portrait.jpg")
        assert (rec.width, rec.height) == (427, 640)
        assert project.load_image(rec).shape[:2] == rec.shape == (640, 427)
        project.save_mask(rec, np.zeros(rec.shape, np.uint8))  # a mask drawn on what the user sees fits
        with pytest.raises(MaskError):
            project.save_mask(rec, np.zeros((427, 640), np.uint8))


def test_set_split_pins_an_image_and_survives_reopen(photo_dir: Path) -> None:
    with Project.open(photo_dir) as project:
        rec = project.images()[0]
        other = "val" if rec.split == "train" else "train"
        assert project.set_split(rec, other).split == other
        with pytest.raises(ProjectError, match="unknown split"):
            project.set_split(rec, "test")
    with Project.open(photo_dir) as project:
        assert project.get(rec.rel_path).split == other


def test_pinned_split_survives_a_touch_but_not_new_content(photo_dir: Path, write_image, rng) -> None:
    """A file whose mtime changes but whose bytes do not keeps its pinned split; new content is re-split."""
    with Project.open(photo_dir) as project:
        rec = project.get("img2.jpg")
        other = "val" if rec.split == "train" else "train"
        project.set_split(rec, other)
    path = photo_dir / "img2.jpg"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 7_000_000_000))
    with Project.open(photo_dir) as project:
        assert project.last_reconcile.changed == ["img2.jpg"]  # it was looked at again...
        assert project.get("img2.jpg").split == other  # ...and kept its pin
    write_image(path, rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    with Project.open(photo_dir) as project:
        new = project.get("img2.jpg")
        assert new.split == split_for_hash(new.content_hash, project.val_fraction)
