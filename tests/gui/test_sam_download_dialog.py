"""Model → Get a SAM model… driven as a user does (the real menu action, the dialog's buttons),
against a real HTTP server on 127.0.0.1 serving a random-weights SAM checkpoint; the catalogue and
the cache are pointed at the test's server and folder through their environment variables."""

from __future__ import annotations

import hashlib
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from segstudio.gui.sam_download_dialog import SamDownloadDialog
from tests.http_files import FileServer

WAIT = 60_000


@pytest.fixture
def server():
    s = FileServer().start()
    yield s
    s.behaviour.release.set()
    s.stop()


@pytest.fixture
def setup(server, tiny_sam_checkpoint, tmp_path, monkeypatch):
    data = tiny_sam_checkpoint.read_bytes()
    server.behaviour.files["tiny_sam.pth"] = data
    common = dict(url="https://example.invalid/x", licence="Apache-2.0", arch="vit_b")
    listing = [
        dict(
            key="tiny",
            name="Tiny SAM",
            filename="tiny_sam.pth",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            **common,
        ),
        dict(key="nohash", name="Unverified SAM", filename="nohash.pt", size=None, sha256=None, **common),
    ]
    (tmp_path / "catalog.json").write_text(json.dumps(listing))
    monkeypatch.setenv("SEGSTUDIO_SAM_CATALOG", str(tmp_path / "catalog.json"))
    monkeypatch.setenv("SEGSTUDIO_SAM_BASE_URL", server.url)
    monkeypatch.setenv("SEGSTUDIO_SAM_CACHE", str(tmp_path / "cache"))
    return data, tmp_path / "cache"


def _open_dialog(window, qtbot) -> SamDownloadDialog:
    action = next(a for a in window.findChildren(QAction) if a.text() == "Get a SAM model…")
    action.trigger()
    qtbot.waitUntil(lambda: window.findChild(SamDownloadDialog) is not None, timeout=WAIT)
    dialog = window.findChild(SamDownloadDialog)
    qtbot.waitExposed(dialog)
    return dialog


def test_download_verifies_and_loads_the_sam_engine(shown_window, qtbot, setup, server):
    data, cache = setup
    window = shown_window()
    dialog = _open_dialog(window, qtbot)
    assert dialog.table.rowCount() == 2 and dialog.table.item(0, 3).text() == hashlib.sha256(data).hexdigest()
    assert dialog.selected().key == "tiny" and dialog.download_button.isEnabled()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: window.tool_state.engine == "sam" and window.tools.smart.sam is not None, timeout=WAIT
    )
    assert [p.name for p in cache.iterdir()] == ["tiny_sam.pth"]
    assert (cache / "tiny_sam.pth").read_bytes() == data


def test_an_unverified_entry_cannot_be_downloaded(shown_window, qtbot, setup, server):
    window = shown_window()
    dialog = _open_dialog(window, qtbot)
    dialog.table.selectRow(1)
    assert not dialog.download_button.isEnabled()
    assert "no published SHA-256" in dialog.status.text() and dialog.table.item(1, 3).text().startswith(
        "unknown"
    )
    assert server.behaviour.requests == []


def test_cancel_keeps_a_part_and_download_resumes_it(shown_window, qtbot, setup, server):
    data, cache = setup
    window = shown_window()
    dialog = _open_dialog(window, qtbot)
    server.behaviour.hold_after = len(data) // 2
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=WAIT)
    assert dialog.close_button.text() == "Cancel" and not dialog.file_button.isEnabled()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    server.behaviour.release.set()  # the server sends on; the download sees the cancel between chunks
    qtbot.waitUntil(lambda: "Cancelled" in dialog.status.text(), timeout=WAIT)
    assert dialog.isVisible() and dialog.table.item(0, 5).text() == "partial"
    assert not (cache / "tiny_sam.pth").exists() and (cache / "tiny_sam.pth.part").is_file()
    server.behaviour.hold_after = None
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.tool_state.engine == "sam", timeout=WAIT)
    assert server.behaviour.requests[-1].startswith("bytes=")  # resumed with a Range request
    assert (cache / "tiny_sam.pth").read_bytes() == data


def test_offline_says_so_in_one_line_and_use_a_file_works(
    shown_window, qtbot, setup, server, tiny_sam_checkpoint, monkeypatch
):
    window = shown_window()
    dialog = _open_dialog(window, qtbot)
    server.stop()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "offline" in dialog.status.text(), timeout=WAIT)
    assert "\n" not in dialog.status.text() and "Use a file" in dialog.status.text()
    assert dialog.file_button.isEnabled()
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tiny_sam_checkpoint), ""))
    qtbot.mouseClick(dialog.file_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.tool_state.engine == "sam", timeout=WAIT)
