"""The ``learned`` engine in the window: offered when the active version carries a click model, used by
the smart click like the other engines (one undo step on Enter), and withdrawn on rollback to a version
without one. Synthetic photo: no shared test data needed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

pytest.importorskip("torch")

from segstudio.core.project import Project
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings
from segstudio.gui.tools import Tool
from segstudio.ml.click_model import ClickNet, save_click_model
from segstudio.ml.click_model_files import CLICK_MODEL_NAME
from segstudio.ml.models import build_model
from segstudio.ml.synthetic import shapes_scheme_dict
from segstudio.ml.weights import save_checkpoint
from tests.gui.conftest import clicks_shown, pick_class, use_engine

WAIT = 60_000
NO = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def window_with_click_model(qtbot, tmp_path, one_torch_thread):
    from segstudio.core.schemes import LabelScheme

    folder = tmp_path / "photos"
    folder.mkdir()
    image = np.full((120, 160, 3), 90, np.uint8)
    image[30:80, 40:110] = (220, 40, 40)
    image[95:105, 130:140] = (40, 60, 200)  # a small blue spot, far from the rectangle
    Image.fromarray(image).save(folder / "a.png")
    with Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict())) as project:
        project.set_setting("gui.weights", {"weights": "none"})  # no segmentation worker in this test
        for version, with_click_model in (("v1", True), ("v2", False)):
            out = project.models_dir / version
            out.mkdir(parents=True)
            if with_click_model:  # the pair training leaves: the click model starts from this best.pt
                import torch

                torch.manual_seed(0)
                arch = "lraspp_mobilenet_v3_large"
                model = build_model(arch, project.scheme.num_classes, aux_loss=False)
                with torch.no_grad():  # a model sure that everything is background (class 0)
                    for layer in (model.classifier.low_classifier, model.classifier.high_classifier):
                        layer.bias.copy_(torch.tensor([10.0] + [-10.0] * (project.scheme.num_classes - 1)))
                save_checkpoint(out / "best.pt", model, arch, project.scheme)
                save_click_model(out / CLICK_MODEL_NAME, ClickNet(width=4))
            else:
                (out / "best.pt").write_bytes(b"placeholder: this test never predicts with v2")
            project.add_model_version(version, out / "best.pt", "lraspp_mobilenet_v3_large")
        project.set_active_model_version("v1")
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=WAIT)
    yield window
    window.tools.smart.set_click_model(None)  # module state: leave the next test without it
    window.close()
    from segstudio.core.interactive.engines import ENGINES

    ENGINES.pop("learned", None)


def test_learned_engine_is_offered_and_clicks_are_one_undo_step(window_with_click_model, qtbot):
    window = window_with_click_model
    combo = window.smart_options.engine_combo
    index = combo.findData("learned")
    assert index >= 0  # the active version v1 carries a click model
    combo.setCurrentIndex(index)  # what choosing it in the options bar does
    assert window.tool_state.engine == "learned"
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S)
    assert window.tool_state.tool == Tool.CLICK
    qtbot.waitUntil(lambda: "learned" in window.tools.smart.engines, timeout=WAIT)
    window.tool_state.active_class = 1
    doc = window.session.document
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, NO, window.canvas.to_widget(75, 55))
    clicks_shown(window)
    assert doc.labels[55, 75] == 1 and doc.history.undo_count == 0  # previewed, not yet recorded
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert doc.history.undo_count == 1
    # rollback to a version without a click model, as a user does it: Model > Versions…, click v2's row,
    # "Use selected version": the engine is withdrawn and the tool falls back
    window.versions_action.trigger()
    dialog = window._panels.get("versions_dialog")
    assert dialog is not None and dialog.isVisible()
    qtbot.waitExposed(dialog)
    (row,) = [r for r in range(dialog.table.rowCount()) if dialog.table.item(r, 0).text() == "v2"]
    cell = dialog.table.visualItemRect(dialog.table.item(row, 0)).center()
    qtbot.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, NO, cell)
    assert dialog.selected_version() == "v2" and dialog.use_button.isEnabled()
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert window.project.active_model_version().version == "v2"
    assert combo.findData("learned") < 0 and window.tool_state.engine == "superpixel"
    dialog.close()


def test_a_click_where_the_model_sees_no_such_object_takes_its_colour_region(window_with_click_model, qtbot):
    """The segmentation model calls the red rectangle background (it disagrees with the user), so the
    click model starts from the colour region around the click (click_evidence.colour_proposal): the
    rectangle as far as the colour reach goes, nothing of the grey around it. The untrained click
    network returns exactly that start, so the test sees the fallback itself."""
    from segstudio.ml.click_evidence import COLOUR_REACH

    window = window_with_click_model
    use_engine(window, qtbot, "learned")
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S)
    pick_class(qtbot, window, 1)
    doc = window.session.document
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, NO, window.canvas.to_widget(75, 55))
    clicks_shown(window)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    taken = doc.labels == 1
    rectangle = np.zeros(taken.shape, bool)
    rectangle[30:80, 40:110] = True
    yy, xx = np.mgrid[: taken.shape[0], : taken.shape[1]]
    reach = np.hypot(xx - 75, yy - 55) <= COLOUR_REACH * 160 - 1.5
    assert not (taken & ~rectangle).any()  # nothing of the grey background
    assert taken[rectangle & reach].mean() > 0.95  # the rectangle, as far as the reach goes
    assert taken.sum() > 4 * np.pi * 9**2  # far more than the click's own disc


def _wand(window: MainWindow, x: int, y: int) -> None:
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_W)
    viewport, canvas = window.canvas.viewport(), window.canvas
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(x, y))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(x, y))


def test_a_learned_click_keeps_the_users_corrections_away_from_it(window_with_click_model, qtbot):
    """On a pre-annotated frame (the model: background everywhere) the user relabels the rectangle and
    the blue spot as triangle with the wand (the spot by mistake), then clicks the spot with the learned
    engine and the class background. The click's start is the model's background region, the whole
    frame, and the clicked label (triangle) is no barrier to it, as the user clicked on it; yet the
    rectangle, the user's triangle away from the click, stays (extent.keep_corrections) while the spot
    under the click becomes background."""
    window = window_with_click_model
    doc = window.session.document
    background = np.zeros(doc.shape, np.uint8)
    doc.set_prediction(background, np.full(doc.shape, 230, np.uint8))  # the pre-annotation
    doc.reset(background)
    pick_class(qtbot, window, 3)
    _wand(window, 75, 55)
    _wand(window, 135, 100)
    rectangle = np.zeros(doc.shape, bool)
    rectangle[30:80, 40:110] = True
    assert (doc.labels[rectangle] == 3).all() and doc.labels[100, 135] == 3
    use_engine(window, qtbot, "learned")
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S)
    pick_class(qtbot, window, 0)
    QTest.mouseClick(
        window.canvas.viewport(), Qt.MouseButton.LeftButton, NO, window.canvas.to_widget(135, 100)
    )
    clicks_shown(window)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert (doc.labels[rectangle] == 3).all()  # the user's correction, away from the click: kept
    assert (doc.labels[97:103, 132:138] == 0).all()  # the clicked mistake: the user overrides it


@pytest.mark.parametrize("damage", ["cut short", "crop aspect 0"])
def test_a_damaged_click_model_is_a_message_and_the_other_tools_keep_working(
    window_with_click_model, qtbot, damage
):
    """The version's click model file is cut short (a full disk) or carries an info no training writes
    (a stranger's hand-edited copy; before, its crop aspect of 0 divided by zero on the first click):
    choosing ``learned`` says so in the status bar, the app keeps running, and the superpixel engine
    still answers clicks."""
    window = window_with_click_model
    path = window.project.models_dir / "v1" / CLICK_MODEL_NAME
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:200])
    else:
        save_click_model(path, ClickNet(width=4), {"max_aspect": 0})
    combo = window.smart_options.engine_combo
    combo.setFocus()
    while combo.currentIndex() != combo.findData("learned"):
        QTest.keyClick(
            combo, Qt.Key.Key_Down if combo.currentIndex() < combo.findData("learned") else Qt.Key.Key_Up
        )
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: "click model" in window.statusBar().currentMessage(), timeout=WAIT)
    assert str(path) in window.statusBar().currentMessage()
    assert "learned" not in window.tools.smart.engines
    use_engine(window, qtbot, "superpixel")
    pick_class(qtbot, window, 1)
    doc = window.session.document
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S)
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, NO, window.canvas.to_widget(75, 55))
    clicks_shown(window)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert doc.labels[55, 75] == 1 and doc.history.undo_count == 1
