"""The Compare dialog's layout and keys, as found by using it in a real window (packaging/screenshot_team.py).

The server side of consensus is tested against a real PostgreSQL in tests/team; here a stand-in project
hands the dialog two annotations, so what is checked is only what the user sees and presses.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from segstudio.core.schemes import get_scheme
from segstudio.core.store_records import ImageRecord, Status
from segstudio.team.consensus import ConsensusImage

H, W = 90, 120


class _TwoAnnotations:
    """What the dialog asks of a team project: the scheme, both branch masks, and a resolution."""

    def __init__(self) -> None:
        self.scheme = get_scheme("voc")
        self.a = np.zeros((H, W), np.uint8)
        self.a[:, W // 2 :] = 15
        self.b = self.a.copy()
        self.b[:30, 40:80] = 7
        self.resolutions: list[str] = []
        self.gate = threading.Event()  # the masks arrive only when the test says so

    def branch_masks(self, rec):
        self.gate.wait(10)
        found = ConsensusImage(rec.id, "alice", "bob", None, 11, 12, None, None, None, "done", "done")
        return found, self.a, self.b

    def resolve_consensus(self, rec, take, seen, classes=None):
        self.resolutions.append(take if not classes else (take, dict(classes)))
        return 13


def _record() -> ImageRecord:
    return ImageRecord(1, "street.png", W, H, "0" * 32, Status.NEW, "train", None, None, None, 0.0, 0.0)


@pytest.fixture
def dialog(qtbot):
    from PySide6.QtWidgets import QWidget

    from segstudio.gui.consensus_dialog import CompareDialog

    parent = QWidget()
    parent.resize(1400, 900)
    qtbot.addWidget(parent)
    parent.show()
    project = _TwoAnnotations()
    photo = np.full((H, W, 3), 90, np.uint8)
    box = CompareDialog(parent, project, _record(), photo)
    box.open()
    qtbot.waitExposed(box)
    yield box, project
    box.close()
    parent.close()


def test_the_dialog_opens_at_its_final_size_so_close_and_every_class_row_stay_in_view(qtbot, dialog):
    box, project = dialog
    before = box.size()
    project.gate.set()
    qtbot.waitUntil(lambda: box.take_b.isEnabled(), timeout=10_000)
    qtbot.wait(50)  # let the layout settle after the pictures and rows arrived
    assert box.size() == before  # nothing grows past where the dialog was centred
    assert box.rect().contains(box.close_button.geometry())
    assert box.table.rowCount() == 3  # background, car, person: all readable without scrolling
    assert box.rect().contains(
        box.choice_buttons["person"]["A"].mapTo(box, box.choice_buttons["person"]["A"].rect().bottomRight())
    )
    assert box.table.verticalScrollBar().maximum() == 0
    assert all(not p.pixmap().isNull() for p in box.pictures)


def test_enter_closes_the_dialog_and_never_resolves(qtbot, dialog):
    from PySide6.QtCore import Qt

    box, project = dialog
    project.gate.set()
    qtbot.waitUntil(lambda: box.take_a.isEnabled(), timeout=10_000)
    box.take_a.setFocus()  # even with Take A focused, as after a look at the pictures
    qtbot.keyClick(box.take_a, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5_000)
    assert project.resolutions == [] and box.version is None


def _click(qtbot, widget) -> None:
    from PySide6.QtCore import Qt

    assert widget.isVisible() and widget.isEnabled()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_a_choice_per_class_updates_the_merged_preview_and_resolve_saves_exactly_that(qtbot, dialog):
    from segstudio.core.schemes import UNLABELED
    from segstudio.team.agreement import merge_annotations

    box, project = dialog
    project.gate.set()
    qtbot.waitUntil(lambda: box.merge.isEnabled(), timeout=10_000)
    rows = {box.table.item(r, 0).text(): box.table.item(r, 1).text() for r in range(box.table.rowCount())}
    assert set(rows) == {"background", "car", "person"} and rows["car"] == "0.000"
    assert set(box.choice_buttons["car"]) == {"A", "B", None}
    assert all(buttons[None].isChecked() for buttons in box.choice_buttons.values())  # the merge rule
    np.testing.assert_array_equal(box.preview, merge_annotations(project.a, project.b)[0])
    assert "1200 pixels left to paint" in box.captions[3].text()  # B's car box is disputed: void
    shown = box.pictures[3].pixmap().cacheKey()

    _click(qtbot, box.choice_buttons["car"]["B"])  # trust bob for cars: his box is kept
    assert box.preview[:30, 40:80].tolist() == np.full((30, 40), 7).tolist()
    np.testing.assert_array_equal(box.preview, merge_annotations(project.a, project.b, {7: "B"})[0])
    assert "(0 pixels left to paint)" in box.captions[3].text()
    assert box.pictures[3].pixmap().cacheKey() != shown

    _click(qtbot, box.choice_buttons["person"]["A"])  # and alice for people: where the two contest, void
    expected = merge_annotations(project.a, project.b, {7: "B", 15: "A"})[0]
    np.testing.assert_array_equal(box.preview, expected)
    assert (expected[:30, 60:80] == UNLABELED).all() and "(600 pixels left to paint)" in box.captions[
        3
    ].text()

    _click(qtbot, box.choice_buttons["car"][None])  # back to the merge rule for cars
    np.testing.assert_array_equal(box.preview, merge_annotations(project.a, project.b, {15: "A"})[0])
    assert not box.choice_buttons["car"]["B"].isChecked()
    _click(qtbot, box.choice_buttons["car"]["B"])

    _click(qtbot, box.merge)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5_000)
    assert project.resolutions == [("merge", {7: "B", 15: "A"})] and box.version == 13


def test_take_a_ignores_the_class_choices(qtbot, dialog):
    box, project = dialog
    project.gate.set()
    qtbot.waitUntil(lambda: box.take_a.isEnabled(), timeout=10_000)
    _click(qtbot, box.choice_buttons["car"]["B"])
    _click(qtbot, box.take_a)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5_000)
    assert project.resolutions == ["A"]
