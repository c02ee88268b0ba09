"""A folder from a stranger with links planted in `.segstudio`: no command writes through them.

Every state entry (lock, the database and its side files, each folder, a mask file, the state folder
itself) is replaced by a link to a sentinel outside the project, then every command that opens a
project runs on it. Each must exit 2 with the one paragraph about the link, and the sentinel must be
byte-identical afterwards (the attack run found `info` truncating a linked `lock` to a process id).
Every command stops at the open, before any model work, so the matrix stays fast.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.errors import UnsafeStateError
from segstudio.core.project import STATE_DIR_NAME, Project, Status

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks")

FILE_ENTRIES = ("lock", "project.db", "project.db-wal", "project.db-shm", "project.db-journal", "masks/1.png")
DIR_ENTRIES = ("masks", "predictions", "predictions_raw", "confidence", "probabilities", "models", "thumbnails",
               "logs", "stale", "staging")  # fmt: skip
ENTRIES = (*FILE_ENTRIES, *DIR_ENTRIES, ".")  # "." = the sidecar state folder itself


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A small labelme folder opened once as a project (one done mask), copied for every case."""
    folder = tmp_path_factory.mktemp("template") / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
        shape = {"label": "cat", "points": [[1, 1], [12, 1], [12, 9]], "shape_type": "polygon"}
        (folder / f"im{i}.json").write_text(
            json.dumps(
                {
                    "version": "5.0.1",
                    "shapes": [shape],
                    "imagePath": f"im{i}.png",
                    "imageHeight": 12,
                    "imageWidth": 16,
                }
            ),
            encoding="utf-8",
        )
    with Project.open(folder) as project:
        rec = project.get("im0.png")
        project.save_mask(rec, np.ones(rec.shape, np.uint8), status=Status.DONE)
    return folder


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """The user's files outside the project: a file and a folder holding a file."""
    home = tmp_path / "victim"
    (home / "folder").mkdir(parents=True)
    (home / "bashrc").write_bytes(b"export PATH=precious\n")
    (home / "folder" / "keep.txt").write_bytes(b"do not touch\n")
    return home


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _plant(template: Path, tmp_path: Path, victim: Path, entry: str) -> Path:
    folder = tmp_path / "photos"
    shutil.copytree(template, folder)
    state = folder / STATE_DIR_NAME
    path = state / entry if entry != "." else state
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    is_dir = entry in DIR_ENTRIES or entry == "."
    path.symlink_to(victim / "folder" if is_dir else victim / "bashrc", target_is_directory=is_dir)
    return folder


def _argv(command: str, folder: Path, tmp_path: Path) -> list[str]:
    return {
        "info": ["info", str(folder)],
        "predict": ["predict", str(folder), "--device", "cpu", "--quiet"],
        "export": ["export", str(folder), "--format", "voc", "--out", str(tmp_path / "out"), "--quiet"],
        "import-in-place": ["import", "labelme", str(folder), "--in-place", "--quiet"],
        "train": ["train", str(folder), "--device", "cpu", "--json"],
        "crf": ["crf", str(folder), "--json"],
        "eval": ["eval", str(folder), "--device", "cpu"],
    }[command]


def _assert_refused(text: str, entry: str) -> None:
    assert "Traceback" not in text
    assert "SegStudio state contains a link" in text and "will not write through it" in text, text
    assert "--project-dir" in text
    shown = entry if entry != "." else STATE_DIR_NAME
    assert shown.split("/")[-1] in text


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("command", ["info", "predict", "export", "import-in-place", "train", "crf", "eval"])
def test_command_refuses_a_planted_link_and_writes_nothing(
    template, tmp_path, victim, capsys, command, entry
):
    folder = _plant(template, tmp_path, victim, entry)
    before = _snapshot(victim)
    code = main(_argv(command, folder, tmp_path))
    captured = capsys.readouterr()
    assert code == 2, captured
    _assert_refused(captured.err, entry)
    assert _snapshot(victim) == before
    assert not (tmp_path / "out").exists()


def test_gui_file_open_refuses_every_planted_link(template, tmp_path, victim, qtbot, monkeypatch):
    """File > Open on each planted folder: the message, the welcome page, the sentinel unchanged."""
    from PySide6.QtWidgets import QFileDialog

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    before = _snapshot(victim)
    for number, entry in enumerate(ENTRIES):
        case = tmp_path / f"case{number}"
        case.mkdir()
        folder = _plant(template, case, victim, entry)
        monkeypatch.setattr(
            QFileDialog, "getExistingDirectory", staticmethod(lambda *a, f=folder, **k: str(f))
        )
        window.last_error = None
        window.actions_by_id["open_folder"].trigger()
        qtbot.waitUntil(lambda: bool(getattr(window, "last_error", None)), timeout=20_000)
        _assert_refused(window.last_error, entry)
        assert window.project is None and window.central.currentIndex() == 0
        assert _snapshot(victim) == before
    window.close()


def test_a_project_dir_the_user_chose_may_itself_be_a_link(template, tmp_path):
    real = tmp_path / "state-real"
    real.mkdir()
    (tmp_path / "state-link").symlink_to(real, target_is_directory=True)
    folder = tmp_path / "photos"
    shutil.copytree(template, folder)
    with Project.open(folder, state_dir=tmp_path / "state-link") as project:
        rec = project.get("im1.png")
        project.save_mask(rec, np.zeros(rec.shape, np.uint8))
    assert (real / "masks").is_dir() and any((real / "masks").iterdir())
    (real / "masks").rename(real / "masks-real")
    (real / "masks").symlink_to(real / "masks-real", target_is_directory=True)
    with pytest.raises(UnsafeStateError, match="masks"):  # its entries may not
        Project.open(folder, state_dir=tmp_path / "state-link")


def test_a_link_planted_while_the_project_is_open_is_not_written_through(template, tmp_path, victim):
    folder = tmp_path / "photos"
    shutil.copytree(template, folder)
    before = _snapshot(victim)
    with Project.open(folder) as project:
        rec = project.get("im1.png")
        masks = project.masks_dir
        masks.rename(masks.parent / "masks-moved")
        masks.symlink_to(victim / "folder", target_is_directory=True)
        with pytest.raises(UnsafeStateError, match="will not write through it"):
            project.save_mask(rec, np.zeros(rec.shape, np.uint8))
        (victim / "folder" / "2.png").symlink_to(victim / "bashrc")
        masks.unlink()
        masks.symlink_to(masks.parent / "masks-moved", target_is_directory=True)
        with pytest.raises(UnsafeStateError):
            project.save_mask(rec, np.zeros(rec.shape, np.uint8))
    (victim / "folder" / "2.png").unlink()
    assert _snapshot(victim) == before


@pytest.mark.parametrize("kind", ["fifo", "hard-link"])
def test_special_files_in_the_state_folder_are_refused(template, tmp_path, victim, kind):
    folder = tmp_path / "photos"
    shutil.copytree(template, folder)
    lock = folder / STATE_DIR_NAME / "lock"
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(lock)
    else:
        os.link(victim / "bashrc", lock)
    before = _snapshot(victim)
    with pytest.raises(UnsafeStateError, match="will not write through it"):
        Project.open(folder)
    assert _snapshot(victim) == before


def test_atomic_writes_inside_an_open_state_folder_never_replace_a_link(template, tmp_path, victim):
    from segstudio.core.atomic import atomic_write_bytes

    folder = tmp_path / "photos"
    shutil.copytree(template, folder)
    before = _snapshot(victim)
    with Project.open(folder) as project:
        planted = project.models_dir / "v1.pt"
        planted.symlink_to(victim / "bashrc")
        with pytest.raises(UnsafeStateError):
            atomic_write_bytes(planted, b"weights")
        assert planted.is_symlink()
        assert not [p for p in project.models_dir.iterdir() if p.name.endswith(".tmp-segstudio")]
    atomic_write_bytes(tmp_path / "elsewhere.bin", b"ok")  # outside any open state folder: unchanged rules
    assert _snapshot(victim) == before
