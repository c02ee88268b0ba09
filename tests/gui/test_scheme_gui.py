"""A project's own classes from the window: load a scheme file, merge and delete classes, and adopt
(or map by name) the classes of a checkpoint chosen with Model → Use weights file…, all by clicking."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from segstudio.core.project import Status
from segstudio.core.schemes import ClassDef, LabelScheme, camvid_scheme

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _yes(monkeypatch, asked: list[str]) -> None:
    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))


def _street_scheme_file(tmp_path) -> str:
    path = tmp_path / "street.json"
    classes = [{"name": n, "color": [40 * i, 100, 200]} for i, n in enumerate(["road", "car", "tree", "sky"])]
    path.write_text(json.dumps({"name": "street", "classes": classes}))
    return str(path)


def _load_street_scheme(qtbot, window, tmp_path, monkeypatch, asked: list[str]) -> None:
    """Load road/car/tree/sky from a file with the palette's Load button; every question answered Yes."""
    scheme_file = _street_scheme_file(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (scheme_file, "")))
    _yes(monkeypatch, asked)
    qtbot.mouseClick(window.palette.load_button, Qt.MouseButton.LeftButton)


def _save_car_and_sky(window):
    """The open image's mask: left half car (1), right half sky (3), saved as the user's; (record, labels)."""
    labels = np.full(window.session.document.shape, 1, np.uint8)
    labels[:, labels.shape[1] // 2 :] = 3
    rec = window.session.record
    window.project.save_mask(rec, labels, Status.IN_PROGRESS)
    return rec, labels


def test_load_scheme_from_file_then_merge_and_delete_by_clicking(
    qtbot, shown_window, small_folder, tmp_path, monkeypatch
):
    window = shown_window(small_folder)
    palette = window.palette
    asked: list[str] = []
    _load_street_scheme(qtbot, window, tmp_path, monkeypatch, asked)
    assert window.project.scheme.names == ["road", "car", "tree", "sky"]
    assert palette.list.count() == 4
    doc = window.session.document
    rec, _labels = _save_car_and_sky(window)

    # Merge car into tree: the car pixels become tree, sky moves from 3 to 2 and stays sky.
    palette.select_class(1)
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: ("tree", True)))
    qtbot.mouseClick(palette.merge_button, Qt.MouseButton.LeftButton)
    assert asked and "Undo class removal" in asked[-1]
    assert window.project.scheme.names == ["road", "tree", "sky"]
    mask = window.project.load_mask(window.project.get(rec.rel_path))
    names = window.project.scheme.names
    assert {names[v] for v in np.unique(mask[:, : doc.shape[1] // 2])} == {"tree"}
    assert {names[v] for v in np.unique(mask[:, doc.shape[1] // 2 :])} == {"sky"}
    shown = window.session.document.labels  # the reopened image shows the rewritten mask
    assert np.array_equal(shown, mask)

    # Delete the unused class "road": asked once, then gone; sky is still sky.
    palette.select_class(0)
    qtbot.mouseClick(palette.delete_button, Qt.MouseButton.LeftButton)
    assert window.project.scheme.names == ["tree", "sky"]
    mask = window.project.load_mask(window.project.get(rec.rel_path))
    assert window.project.scheme.names[int(mask[0, -1])] == "sky"


def _edit_menu_entry(qtbot, window, prefix: str):
    """Click Edit in the menu bar, as the user does; the open menu and its entry starting with `prefix`."""
    bar = window.menuBar()
    title = next(a for a in bar.actions() if a.text() == "&Edit")
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(title).center())
    menu = title.menu()
    qtbot.waitUntil(menu.isVisible, timeout=3000)
    return menu, next(a for a in menu.actions() if a.text().startswith(prefix))


def _undo_entry_disabled(qtbot, window) -> bool:
    menu, entry = _edit_menu_entry(qtbot, window, "Undo class removal")
    QTest.keyClick(menu, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not menu.isVisible(), timeout=3000)
    return not entry.isEnabled()


def test_a_merge_is_taken_back_from_the_edit_menu_with_the_class_pixels(
    qtbot, shown_window, small_folder, tmp_path, monkeypatch
):
    window = shown_window(small_folder)
    palette = window.palette
    _load_street_scheme(qtbot, window, tmp_path, monkeypatch, [])
    assert _undo_entry_disabled(qtbot, window)
    rec, labels = _save_car_and_sky(window)
    palette.select_class(1)
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: ("tree", True)))
    qtbot.mouseClick(palette.merge_button, Qt.MouseButton.LeftButton)
    assert window.project.scheme.names == ["road", "tree", "sky"]

    menu, undo = _edit_menu_entry(qtbot, window, "Undo removing class")
    assert undo.isEnabled() and "'car'" in undo.text()
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(undo).center())
    assert window.project.scheme.names == ["road", "car", "tree", "sky"]
    assert palette.list.count() == 4
    mask = window.project.load_mask(window.project.get(rec.rel_path))
    assert np.array_equal(mask, labels)
    assert np.array_equal(window.session.document.labels, labels)  # the open image shows car again
    assert "'car' is back" in window.statusBar().currentMessage()
    assert _undo_entry_disabled(qtbot, window)


def test_delete_of_a_used_class_asks_what_its_pixels_become_and_cancel_changes_nothing(
    qtbot, shown_window, small_folder, monkeypatch
):
    window = shown_window(small_folder)
    rec = window.session.record
    window.project.save_mask(rec, np.full((48, 64), 15, np.uint8))  # person (VOC)
    before = list(window.project.scheme.names)
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: ("", False)))
    window.palette.select_class(15)
    qtbot.mouseClick(window.palette.delete_button, Qt.MouseButton.LeftButton)
    assert window.project.scheme.names == before
    assert (window.project.load_mask(window.project.get(rec.rel_path)) == 15).all()


def _click_in_box(qtbot, button_name: str, seen: list[str]) -> None:
    """Answer the checkpoint-classes box (a modal exec) by clicking one of its buttons."""

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if box is None or box.objectName() != "checkpoint_classes_box":
            QTimer.singleShot(50, answer)
            return
        seen.append(box.text())
        button = box.findChild(type(box.buttons()[0]), button_name)
        seen.append("enabled" if button.isEnabled() else "disabled")
        if button.isEnabled():
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        else:
            box.reject()

    QTimer.singleShot(50, answer)


def test_weights_file_with_other_classes_offers_to_adopt_them(
    qtbot, shown_window, small_folder, small_checkpoint, monkeypatch
):
    window = shown_window(small_folder)
    camvid = camvid_scheme()
    checkpoint = str(small_checkpoint(camvid))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (checkpoint, "")))
    seen: list[str] = []
    _click_in_box(qtbot, "adopt_button", seen)
    window.weights_file_action.trigger()
    assert seen and "11 classes" in seen[0] and seen[1] == "enabled"
    assert window.project.scheme.names == camvid.names
    assert window.project.scheme.colors.tolist() == camvid.colors.tolist()
    assert window.palette.list.count() == 11
    assert window.model.spec_changes == {
        "weights": "file",
        "path": checkpoint,
        "version": None,
        "remap_classes": False,
        "classes_by_index": True,
    }
    window.predict_current()
    qtbot.waitUntil(lambda: window.session.document.prediction is not None, timeout=60_000)
    assert window.session.document.prediction.max() < 11  # predicted in the adopted classes


def test_weights_file_on_a_project_with_masks_maps_by_name(
    qtbot, shown_window, small_folder, small_checkpoint, monkeypatch
):
    window = shown_window(small_folder)
    window.project.save_mask(window.session.record, np.full((48, 64), 7, np.uint8))  # car (VOC)
    theirs = LabelScheme(
        "mine", (ClassDef("background", (0, 0, 0)), ClassDef("car", (200, 0, 0)), ClassDef("kerb", (9, 9, 9)))
    )
    checkpoint = str(small_checkpoint(theirs))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (checkpoint, "")))
    before = list(window.project.scheme.names)
    seen: list[str] = []
    _click_in_box(qtbot, "adopt_button", seen)
    window.weights_file_action.trigger()
    assert seen[1] == "disabled" and "already has masks" in seen[0]
    assert window.project.scheme.names == before and window.model.spec_changes.get("path") != checkpoint
    seen.clear()
    _click_in_box(qtbot, "map_button", seen)
    window.weights_file_action.trigger()
    assert "2 shared" in seen[0] and seen[1] == "enabled"
    assert window.model.spec_changes["remap_classes"] is True
    window.predict_current()
    qtbot.waitUntil(lambda: window.session.document.prediction is not None, timeout=60_000)
    assert window.project.scheme.names == before  # the masks keep their classes
