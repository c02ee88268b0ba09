"""A new annotator's first hour on the CamVid sample, scripted through the real widgets (issue #19).

Open the folder, adopt a checkpoint's 11 classes (Model → Use weights file…), pre-annotate every
frame, correct objects with each smart-click engine, the magic wand and a polygon, rename classes
with the palette's Rename button (so the Cityscapes export accepts them), mark images done, tune
the CRF, fine-tune one tiny epoch, export VOC and Cityscapes, and reopen. Assertions are on what a
user would check: masks on disk, files written, statuses, the class names, a registered version.
The checkpoint has random weights (built here, never downloaded): the flow is tested, not accuracy.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from segstudio.core.interactive.robot import interior_point
from segstudio.core.project import Status
from segstudio.core.schemes import camvid_scheme
from segstudio.gui.tools import Tool
from segstudio.ml.crf_project import TUNE_REPORT_KEY
from tests.gui.conftest import clicks_shown, pick_class

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NO = Qt.KeyboardModifier.NoModifier
WAIT = 90_000
FRAMES = 8  # of the 24: pre-annotation stays a few seconds on one CPU thread
CAR, SKY, ROAD = 8, 0, 3  # CamVid indices (the sample's masks use the scheme's order)
#: CamVid names that Cityscapes calls otherwise (the Cityscapes export needs its own names)
TO_CITYSCAPES = {
    "pavement": "sidewalk",
    "tree": "vegetation",
    "signsymbol": "traffic sign",
    "pedestrian": "person",
    "bicyclist": "rider",
}
TINY_TRAINING = {"workers": 0, "min_iters_per_epoch": 2, "device": "cpu", "patience": 0}


@pytest.fixture
def camvid(shared_testdata: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the first CamVid sample frames (images only) and the folder of their true masks."""
    sample = shared_testdata / "camvid_sample"
    if not (sample / "images").is_dir():
        pytest.skip(f"CamVid sample not found at {sample}")
    folder = tmp_path / "camvid"
    folder.mkdir()
    for path in sorted((sample / "images").glob("*.png"))[:FRAMES]:
        shutil.copy2(path, folder / path.name)
    return folder, sample / "masks"


def _truth(masks: Path, rel_path: str) -> np.ndarray:
    return np.array(Image.open(masks / rel_path))


def _key(window, key: Qt.Key, modifier=NO) -> None:
    """A key pressed in the window (active again after a dialog), on whatever widget has the focus."""
    if QApplication.activeWindow() is not window:
        window.activateWindow()
        QApplication.processEvents()
    QTest.keyClick(window.focusWidget() or window.canvas, key, modifier)


def _click(window, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
    QTest.mouseClick(window.canvas.viewport(), button, NO, window.canvas.to_widget(x, y))
    clicks_shown(window)


def _answer_modal(name: str, act) -> None:
    """Run `act(widget)` on the modal dialog `name` (object or class name) once shown (it blocks in exec)."""

    def poll() -> None:
        widget = QApplication.activeModalWidget()
        if widget is None or name not in (widget.objectName(), type(widget).__name__):
            QTimer.singleShot(30, poll)
            return
        act(widget)

    QTimer.singleShot(30, poll)


class _Errors(logging.Handler):
    """Errors the app logs (a model that fails to load, a failed save) fail the session."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logged_errors():
    handler = _Errors()
    logging.getLogger("segstudio").addHandler(handler)
    yield handler.messages
    logging.getLogger("segstudio").removeHandler(handler)


def test_first_hour_session(
    qtbot, shown_window, camvid, small_checkpoint, monkeypatch, tmp_path, logged_errors
):
    started = time.perf_counter()
    laps: list[tuple[str, float]] = []

    def lap(name: str) -> None:
        laps.append((name, round(time.perf_counter() - started, 1)))

    folder, masks = camvid
    camvid_classes = camvid_scheme()
    checkpoint = str(small_checkpoint(camvid_classes, "camvid_random.pt"))

    # 1. Open the folder (a new folder opens on VOC).
    window = shown_window(folder, size=(1400, 900))
    project = window.project
    assert project.scheme.num_classes == 21

    lap("open")
    # 2. Model → Use weights file… with an 11-class checkpoint: adopt its classes.
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (checkpoint, "")))
    _answer_modal(
        "checkpoint_classes_box",
        lambda box: qtbot.mouseClick(
            box.findChild(type(box.buttons()[0]), "adopt_button"), Qt.MouseButton.LeftButton
        ),
    )
    window.weights_file_action.trigger()
    assert project.scheme.names == camvid_classes.names
    assert window.palette.list.count() == 11

    lap("adopt")
    # 3. Pre-annotate every frame (Ctrl+Shift+P), the status bar's batch runs to the end.
    window.canvas.setFocus()
    _key(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.model_status.cancel_button.isVisible() or project.counts().get(Status.PREDICTED, 0)
    qtbot.waitUntil(lambda: project.counts().get(Status.PREDICTED, 0) == FRAMES, timeout=WAIT)
    qtbot.waitUntil(lambda: window.session.document.prediction is not None, timeout=WAIT)
    doc = window.session.document
    first = window.session.record.rel_path
    truth = _truth(masks, first)

    lap("pre-annotate")
    # 4. Click-correct an object with each engine (S, pick its class in the palette, click, Enter).
    _key(window, Qt.Key.Key_S)
    assert window.tool_state.tool == Tool.CLICK
    smart = window.tools.smart
    objects = []  # (class, x, y) of a true object the current mask gets wrong at its interior point
    for cls in (CAR, 1, 4, 5, 2, 9):
        if np.any(truth == cls):
            ox, oy, _ = interior_point(truth == cls)
            if doc.labels[oy, ox] != cls:
                objects.append((cls, ox, oy))
    assert len(objects) >= 3, "the frame has too few objects to correct"
    for engine, (cls, ox, oy) in zip(("superpixel", "grabcut", "crf"), objects, strict=False):
        pick_class(qtbot, window, cls)
        combo = window.smart_options.engine_combo
        combo.setCurrentIndex(combo.findData(engine))  # the user's choice in the Engine box
        assert window.tool_state.engine == engine
        qtbot.waitUntil(lambda e=engine: smart.is_ready and e in smart.engines, timeout=WAIT)
        steps = doc.history.undo_count
        window.canvas.setFocus()
        _click(window, ox, oy)
        assert doc.labels[oy, ox] == cls, engine
        _key(window, Qt.Key.Key_Return)
        assert doc.history.undo_count == steps + 1, engine
    cls0, x, y = objects[0]

    lap("click engines")
    # 5. Magic wand on the sky (W, drag), then a polygon on the road (G, three clicks, Enter).
    pick_class(qtbot, window, SKY)
    window.canvas.setFocus()
    _key(window, Qt.Key.Key_W)
    sx, sy, _ = interior_point(truth == SKY)
    viewport, canvas = window.canvas.viewport(), window.canvas
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(sx, sy))
    QTest.mouseMove(viewport, canvas.to_widget(sx + 6, sy))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, NO, canvas.to_widget(sx + 6, sy))
    assert doc.labels[sy, sx] == SKY
    pick_class(qtbot, window, ROAD)
    window.canvas.setFocus()
    _key(window, Qt.Key.Key_G)
    h, w = doc.shape
    triangle = [(w * 0.3, h * 0.95), (w * 0.7, h * 0.95), (w * 0.5, h * 0.8)]
    for px, py in triangle:
        _click(window, px, py)
    _key(window, Qt.Key.Key_Return)
    assert doc.labels[int(h * 0.9), int(w * 0.5)] == ROAD
    window.flush_current()
    saved = project.load_mask(project.get(first))
    assert saved is not None and saved[y, x] == cls0 and saved[sy, sx] == SKY

    lap("wand+polygon")
    # 6. Rename the classes Cityscapes calls otherwise, with the palette's Rename button.
    names = iter(TO_CITYSCAPES.values())
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (next(names), True)))
    for old in TO_CITYSCAPES:
        pick_class(qtbot, window, project.scheme.names.index(old))
        qtbot.mouseClick(window.palette.rename_button, Qt.MouseButton.LeftButton)
    assert [project.scheme.names[i] for i in (4, 5, 6, 9, 10)] == list(TO_CITYSCAPES.values())

    lap("rename")
    # 7. Mark done (D) on three frames: each moves on to the next unfinished one.
    window.canvas.setFocus()
    for _ in range(3):
        _key(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: project.counts().get(Status.DONE, 0) == 3, timeout=WAIT)
    done = project.images(status=Status.DONE)
    assert all(project.has_mask(r) for r in done)

    lap("done")
    # 8. Tune the CRF (Model → Tune CRF on corrected images): a report, kept or not.
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    window.crf_actions["crf_tune"].trigger()
    crf = window._panels["crf_panel"]
    qtbot.waitUntil(lambda: not crf.runner.is_running(), timeout=WAIT)
    assert project.get_setting(TUNE_REPORT_KEY) or "Last tuning" in crf.report_label.text(), (
        crf.report_label.text()
    )

    lap("crf")
    # 9. Fine-tune one tiny epoch (Train → Fine-tune…, Fine-tune button).
    window.finetune_action.trigger()
    tune = window._panels["finetune_panel"]
    tune.extra_settings = dict(TINY_TRAINING)
    tune.epochs_spin.setValue(1)
    tune.crop_spin.setValue(64)
    tune.batch_spin.setValue(2)
    with qtbot.waitSignal(tune.training_finished, timeout=240_000) as finished:
        qtbot.mouseClick(tune.fine_tune_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"], tune.status_label.text()
    assert tune.new_version == "v1" and project.get_model_version("v1") is not None
    tune.close()

    lap("finetune")
    # 10. Export VOC, then Cityscapes (File → Export…, a modal dialog).
    exported: list[str] = []
    for fmt, marker in (("voc", "SegmentationClass"), ("cityscapes", "gtFine")):
        out = tmp_path / f"export_{fmt}"
        exported.clear()

        def export(dialog, fmt=fmt, out=out) -> None:
            dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
            dialog.out_edit.clear()
            QTest.keyClicks(dialog.out_edit, str(out))
            qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT)
            exported.append(dialog.status_label.text())
            dialog.close()

        _answer_modal("ExportDialog", export)
        window.export_action.trigger()
        assert exported, "the export dialog never ran"
        written = [p for p in out.rglob("*.png") if marker in p.parts]
        assert len(written) >= 3, (fmt, exported)

    lap("export")
    # 11. Reopen: the same classes, statuses and masks.
    window.close()
    again = shown_window(folder)
    assert again.project.scheme.names[4] == "sidewalk" and again.project.scheme.num_classes == 11
    assert again.project.counts().get(Status.DONE, 0) == 3
    assert again.browser.counter.text().startswith("3 / 8 done")
    reopened = again.project.load_mask(again.project.get(first))
    assert reopened[y, x] == cls0
    lap("reopen")
    print("first-hour session, seconds since start:", laps)
    assert not logged_errors, logged_errors
