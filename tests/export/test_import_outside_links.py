"""Links from a dataset to files outside it: shared image storage still imports, a planted link to a
private file (`creds.jpg -> ~/.ssh/id_rsa`) is listed in the preview and never copied into the project."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project
from segstudio.export.mask_folder_import import preview_mask_folder

pytestmark = pytest.mark.skipif(os.name == "nt", reason="needs POSIX symlinks")

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A mask folder: one image inside, one linked from shared storage, one linked to a private key."""
    root = tmp_path / "dataset"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shared = tmp_path / "shared-storage"
    shared.mkdir()
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_rsa").write_bytes(SECRET)
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(root / "images" / "own.png")
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(shared / "cam1.png")
    (root / "images" / "shared.png").symlink_to(shared / "cam1.png")
    (root / "images" / "creds.png").symlink_to(ssh / "id_rsa")
    for name in ("own", "shared", "creds"):
        Image.fromarray(np.ones((10, 12), np.uint8)).save(root / "masks" / f"{name}.png")
    return root


def test_preview_lists_the_files_outside_the_dataset(dataset, capsys):
    plan = preview_mask_folder(dataset)
    outside = dict(plan.outside_files())
    assert set(outside) == {"shared.png", "creds.png"}
    assert outside["creds.png"].name == "id_rsa"
    assert main(["import", "masks", str(dataset), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 image file(s) lie outside" in out and "creds.png ->" in out and "id_rsa" in out


def test_only_files_that_decode_as_images_are_copied(dataset, tmp_path, capsys):
    target = tmp_path / "project"
    assert main(["import", "masks", str(dataset), "--out", str(target), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "creds.png" in captured.err and "not an image" in captured.err
    assert "imported 2 images" in captured.out
    assert not (target / "creds.png").exists()
    for path in target.rglob("*"):
        assert not path.is_symlink()
        if path.is_file():
            assert SECRET not in path.read_bytes()
    with Project.open(target) as project:
        assert sorted(r.rel_path for r in project.images()) == ["own.png", "shared.png"]
        assert all(project.has_mask(r) for r in project.images())


def test_gui_import_preview_shows_the_outside_files(dataset, qtbot):
    from PySide6.QtCore import Qt

    from segstudio.gui.import_dialog import ImportDialog

    dialog = ImportDialog()
    qtbot.addWidget(dialog)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("masks"))
    dialog.source_edit.setText(str(dataset))
    qtbot.mouseClick(dialog.preview_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=20_000)
    text = dialog.summary.text()
    assert "lie outside" in text and "creds.png" in text and "id_rsa" in text
