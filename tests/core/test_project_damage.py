"""A damaged project database stops with one paragraph offering `segstudio repair`, never resets the project.

Each case damages a real project the way the attack run did (0 bytes, a dropped table, a scrambled
page, a scheme that is not JSON, a non-numeric setting), then checks: the open refuses with the
repair command, the mask files are byte-identical, and `segstudio repair` brings statuses and masks back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.errors import DamagedProjectError
from segstudio.core.project import DB_NAME, STATE_DIR_NAME, Project, Status
from segstudio.core.store_repair import repair_project


def _tiny_folder(root: Path, count: int = 4) -> Path:
    folder = root / "photos"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12 + i, 16, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.fixture
def project_with_masks(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A camvid-scheme project: two done masks, one in progress, one new; returns the mask bytes by image."""
    folder = _tiny_folder(tmp_path)
    with Project.open(folder, scheme="camvid") as project:
        project.set_setting("val_fraction", 0.5)
        for name, status in (
            ("im0.png", Status.DONE),
            ("im1.png", Status.DONE),
            ("im2.png", Status.IN_PROGRESS),
        ):
            rec = project.get(name)
            project.save_mask(rec, np.full(rec.shape, int(name[2]) + 1, np.uint8), status=status)
        masks = {
            r.rel_path: project.mask_path(r).read_bytes() for r in project.images() if project.has_mask(r)
        }
    return folder, masks


def _mask_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / STATE_DIR_NAME / "masks").glob("*.png"))}


def _empty(db: Path) -> None:
    db.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _drop_images(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE images")


def _scheme_not_json(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '{not json' WHERE key = 'scheme'")


def _val_fraction_text(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE settings SET value = '\"lots\"' WHERE key = 'val_fraction'")


def _scramble_index(db: Path) -> None:
    """Garbage over the pages of the images_order index: the table's rows stay readable."""
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'images_order'").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    start = (root - 1) * page_size
    data[start : start + page_size] = bytes((i * 37 + 11) % 256 for i in range(page_size))
    db.write_bytes(bytes(data))


def _scheme_deleted(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'scheme'")


DAMAGE = {
    "scheme-deleted": _scheme_deleted,
    "empty": _empty,
    "dropped-table": _drop_images,
    "scheme-not-json": _scheme_not_json,
    "val-fraction-text": _val_fraction_text,
    "scrambled-page": _scramble_index,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["open", "read-only", "info", "export"])
def test_damaged_database_refuses_with_repair_and_keeps_masks(
    project_with_masks, damage, command, tmp_path, capsys
):
    folder, _ = project_with_masks
    db = folder / STATE_DIR_NAME / DB_NAME
    DAMAGE[damage](db)
    before_db, before_masks = db.read_bytes(), _mask_bytes(folder)
    if command == "open":
        with pytest.raises(DamagedProjectError, match="segstudio repair") as caught:
            Project.open(folder)
        message = str(caught.value)
    elif command == "read-only":
        with pytest.raises(DamagedProjectError, match="segstudio repair") as caught:
            Project.open_read_only(folder)
        message = str(caught.value)
    else:
        argv = ["info", str(folder)] if command == "info" else ["export", str(folder), "--format", "voc",
                                                                 "--out", str(tmp_path / "out")]  # fmt: skip
        assert main(argv) == 2
        message = capsys.readouterr().err
        assert "Traceback" not in message
        assert not (tmp_path / "out").exists()
    assert f"segstudio repair {folder}" in message and "damaged" in message
    assert "3 mask file(s) are untouched" in message
    assert _mask_bytes(folder) == before_masks
    if damage == "empty":
        assert db.read_bytes() == before_db == b""
    with pytest.raises(DamagedProjectError):  # still refused: nothing was re-initialised over it
        Project.open(folder)


@pytest.mark.parametrize(
    "damage", ["scrambled-page", "scheme-not-json", "scheme-deleted", "val-fraction-text"]
)
def test_repair_recovers_statuses_and_masks(project_with_masks, damage, capsys):
    folder, masks = project_with_masks
    DAMAGE[damage](folder / STATE_DIR_NAME / DB_NAME)
    argv = ["repair", str(folder)] + (["--scheme", "camvid"] if damage.startswith("scheme") else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "damaged database is kept as" in out
    assert list((folder / STATE_DIR_NAME).glob(f"{DB_NAME}.damaged-*"))
    with Project.open(folder) as project:
        assert project.scheme.name == "camvid"
        statuses = {r.rel_path: r.status for r in project.images()}
        assert statuses == {"im0.png": Status.DONE, "im1.png": Status.DONE, "im2.png": Status.IN_PROGRESS,
                            "im3.png": Status.NEW}  # fmt: skip
        assert {
            r.rel_path: project.mask_path(r).read_bytes() for r in project.images() if project.has_mask(r)
        } == masks
        if damage == "val-fraction-text":
            assert project.val_fraction == pytest.approx(0.2)  # the default, reported as dropped
            assert "val_fraction" in out


@pytest.mark.parametrize("damage", ["empty", "dropped-table"])
def test_repair_reattaches_masks_by_content_hash_when_rows_are_lost(project_with_masks, damage):
    folder, masks = project_with_masks
    DAMAGE[damage](folder / STATE_DIR_NAME / DB_NAME)
    if damage == "empty":  # the scheme went with the rows: repair asks for it and changes nothing
        with pytest.raises(Exception, match="--scheme"):
            repair_project(folder)
        assert (folder / STATE_DIR_NAME / DB_NAME).stat().st_size == 0
    report = repair_project(folder, scheme="camvid")
    assert sorted(report.reattached) == ["im0.png", "im1.png", "im2.png"]
    assert report.unattached == []
    with Project.open(folder) as project:
        assert project.scheme.name == "camvid"
        attached = {
            r.rel_path: project.mask_path(r).read_bytes() for r in project.images() if project.has_mask(r)
        }
        assert attached == masks
        assert {r.rel_path for r in project.images(status=Status.IN_PROGRESS)} == set(masks)


def test_mask_without_hash_is_kept_aside_and_listed(project_with_masks):
    folder, _ = project_with_masks
    state = folder / STATE_DIR_NAME
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(state / "masks" / "77.png")  # an old mask: no hash
    _drop_images(state / DB_NAME)
    report = repair_project(folder)
    assert report.unattached == ["masks/77.png"]
    assert (report.aside / "masks" / "77.png").is_file()


def test_emptied_database_without_work_starts_over(tmp_path):
    folder = _tiny_folder(tmp_path, 1)
    Project.open(folder).close()
    (folder / STATE_DIR_NAME / DB_NAME).write_bytes(b"")
    with Project.open(folder) as project:  # nothing could be lost: a fresh project is fine
        assert len(project) == 1


def test_disk_full_while_saving_says_so(project_with_masks):
    from segstudio.core.errors import DiskWriteError

    folder, _ = project_with_masks
    with Project.open(folder) as project:
        pages = project._db.execute("PRAGMA page_count").fetchone()[0]
        project._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DiskWriteError, match=r"disk holding .* is full"):
            for i in range(200):  # the database grows until SQLite reports SQLITE_FULL
                project.set_setting(f"notes{i}", "x" * 3000)
        assert project.get("im0.png").status == Status.DONE  # what was saved before is intact


def test_disk_full_during_import_masks_is_one_clear_message(tmp_path, monkeypatch, capsys):
    """`import masks` when SQLite reports SQLITE_FULL (simulated with max_page_count): exit 2, no traceback."""
    from segstudio.core import store_schema

    source = tmp_path / "dataset"
    (source / "images").mkdir(parents=True)
    (source / "masks").mkdir()
    rng = np.random.default_rng(9)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
            source / "images" / f"{'x' * 150}{i}.png"
        )
        Image.fromarray(np.ones((8, 8), np.uint8)).save(source / "masks" / f"{'x' * 150}{i}.png")
    real_connect = store_schema.connect

    def tiny_disk(store, path, image_dir, state_dir):
        real_connect(store, path, image_dir, state_dir)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 1}")

    monkeypatch.setattr(store_schema, "connect", tiny_disk)
    target = tmp_path / "project"
    assert main(["import", "masks", str(source), "--out", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is full" in err and "free some space" in err, err
    assert str(target) in err and "nothing was published" in err, err
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if "segstudio-import" in p.name]


def test_repair_uses_the_sqlite3_shell_recover_when_it_works(project_with_masks, tmp_path, monkeypatch):
    """Where the `sqlite3` shell's `.recover` works, its SQL is replayed (a stand-in shell prints a dump here:
    the shell on the CI image fails `.recover`, which the other tests cover through the row-by-row salvage)."""
    import shutil as shutil_module
    import sys

    folder, masks = project_with_masks
    _scramble_index(folder / STATE_DIR_NAME / DB_NAME)
    shell = tmp_path / "bin" / "sqlite3"
    shell.parent.mkdir()
    shell.write_text(
        f"#!{sys.executable}\nimport sqlite3, sys\nconn = sqlite3.connect(sys.argv[1])\n"
        "print(chr(10).join(conn.iterdump()))\n",
        encoding="utf-8",
    )
    shell.chmod(0o755)
    monkeypatch.setattr(
        shutil_module, "which", lambda name, *a, **k: str(shell) if name == "sqlite3" else None
    )
    report = repair_project(folder)
    assert report.method == "sqlite3 .recover"
    with Project.open(folder) as project:
        assert project.get("im0.png").status == Status.DONE
        assert {
            r.rel_path: project.mask_path(r).read_bytes() for r in project.images() if project.has_mask(r)
        } == masks
