"""Per-image problems land in a non-modal list (file + reason, clickable), never in a message box."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from segstudio.gui.problems import one_paragraph
from tests.fakes import FakeInferenceClient

WAIT = 20_000


class BatchWithOneBadFile(FakeInferenceClient):
    """An InferenceClient whose batch decodes every file but the last."""

    def __init__(self, project, bad: str) -> None:
        super().__init__(project)
        self.bad = bad

    def predict_batch(self, rel_paths: list[str]) -> None:
        for done, path in enumerate(rel_paths, 1):
            if path == self.bad:
                self.error.emit(path, "image file is truncated (12 bytes not processed)")
            self.progress.emit(done, len(rel_paths), path)


def _modal_boxes() -> list[QDialog]:
    return [
        w for w in QApplication.topLevelWidgets() if isinstance(w, (QMessageBox, QDialog)) and w.isVisible()
    ]


def test_a_bad_file_in_a_batch_is_listed_and_marked_without_a_box(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    bad = sorted(p.name for p in demo_photos.glob("*.jpg"))[-1]
    window.model.set_controller(BatchWithOneBadFile(window.project, bad))
    window.actions_by_id["predict_all_new"].trigger()
    qtbot.waitUntil(lambda: bad in window.problems.problems(), timeout=WAIT)
    assert not _modal_boxes()
    assert "truncated" in window.problems.problems()[bad]
    assert window.problems_button.isVisible() and "1 problem" in window.problems_button.text()
    row = window.browser.model.row_of(bad)
    assert window.browser.model.index(row).data(Qt.ItemDataRole.UserRole + 2) == "problem"
    # The notice opens the list; clicking the row opens the image.
    window.problems_button.click()
    assert window.problems_dock.isVisible()
    item = window.problems.list.item(0)
    rect = window.problems.list.visualItemRect(item)
    QTest.mouseClick(
        window.problems.list.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        rect.center(),
    )
    qtbot.waitUntil(lambda: window.session.record.rel_path == bad, timeout=WAIT)
    # A later successful prediction clears the problem.
    window.model.prediction_ready.emit(bad, object())
    assert bad not in window.problems.problems() and not window.problems_button.isVisible()


def test_a_deleted_image_clicked_is_a_problem_not_a_box(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    gone = sorted(p.name for p in demo_photos.glob("*.jpg"))[-1]  # not prefetched into the image cache
    (demo_photos / gone).unlink()
    window.open_image(gone)
    qtbot.waitUntil(lambda: gone in window.problems.problems(), timeout=WAIT)
    assert not _modal_boxes()
    assert window.session.document is None  # nothing to paint on; the canvas says why
    assert "cannot be opened" in window.canvas.message.text()


def test_a_model_follow_up_is_not_stacked_onto_the_model_error(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    window._model_error("", "the weights cannot be downloaded\n\nChoose weights in the Model menu")
    window._model_error("a.png", "no model is loaded, so it was not predicted (the model error says why)")
    boxes = [b for b in _modal_boxes() if isinstance(b, QMessageBox)]
    assert len(boxes) == 1 and boxes[0].parent() is window
    assert boxes[0].text() == "the weights cannot be downloaded. Choose weights in the Model menu."
    assert not window.problems.problems()
    QTest.keyClick(boxes[0], Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not _modal_boxes(), timeout=WAIT)


def test_one_paragraph_joins_parts_into_sentences():
    assert one_paragraph("A failed\n\nDo  this.\n") == "A failed. Do this."


def test_panels_open_centred_on_the_main_window_and_close_with_escape(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos, size=(760, 560))  # inside the offscreen screen (800 x 600)
    window.move(20, 10)
    window.versions_action.trigger()
    panel = window._panels["versions_dialog"]
    qtbot.waitExposed(panel)
    offset = panel.frameGeometry().center() - window.frameGeometry().center()
    assert abs(offset.y()) <= 2 and abs(offset.x()) <= 40  # x: kept inside the screen
    assert window.screen().availableGeometry().contains(panel.frameGeometry())
    QTest.keyClick(panel, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=WAIT)


def test_offline_model_error_is_one_paragraph_in_the_apps_words(offline_downloads):
    import pytest
    from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights

    from segstudio.gui.inference_worker import _load_message
    from segstudio.ml import hub

    with pytest.raises(hub.WeightsUnavailableError) as info:
        hub.fetch_state_dict(LRASPP_MobileNet_V3_Large_Weights.DEFAULT)
    message = _load_message(info.value)
    assert "\n" not in message and "--weights" not in message
    assert "Use weights file" in message and "Use untrained model" in message and "Fine-tune" in message
    assert info.value.url in message


def test_a_plain_window_placed_on_the_main_window_closes_with_escape(shown_window, qtbot):
    from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

    from segstudio.gui.panels import place_window

    window = shown_window(size=(760, 560))
    panel = QWidget(window, Qt.WindowType.Window)
    QVBoxLayout(panel).addWidget(QLineEdit(panel))
    panel.resize(5000, 300)  # wider than the screen: shrunk to fit
    panel.show()
    place_window(panel, window)
    qtbot.waitExposed(panel)
    assert window.screen().availableGeometry().contains(panel.frameGeometry())
    QTest.keyClick(panel.findChild(QLineEdit), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=WAIT)
