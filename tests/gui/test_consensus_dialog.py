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

    def resolve_consensus(self, rec, take, seen):
        self.resolutions.append(take)
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
