"""What a first-time user hits: no weights offline, errors in a burst, exceptions escaping slots."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from segstudio.core.project import Project
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(images / name)
    return images


@pytest.fixture
def window(qtbot):
    win = MainWindow(AppSettings())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def _boxes(window: MainWindow) -> list[QMessageBox]:
    return [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def test_a_failed_model_load_says_what_to_do_in_the_app_and_is_retried(qtbot, folder, tmp_path):
    from segstudio.gui.inference_worker import InferenceController
    from segstudio.ml.models import build_model
    from segstudio.ml.spec import ModelSpec
    from segstudio.ml.weights import save_checkpoint

    weights = tmp_path / "later.pt"
    spec = ModelSpec(
        arch=ARCH, weights="file", path=str(weights), device="cpu", precision="float32", max_side=64
    )
    with Project.open(folder) as project:
        ctrl = InferenceController(project, spec)
        try:
            with qtbot.waitSignal(ctrl.error, timeout=60000) as blocker:
                pass
            assert "does not exist" in blocker.args[1] and "Use weights file" in blocker.args[1]
            with qtbot.waitSignal(ctrl.error, timeout=30000) as blocker:
                ctrl.request("a.png")
            assert "no model is loaded" in blocker.args[1]
            # the user fixes the cause (puts the file there): the next request loads it, no restart needed
            save_checkpoint(weights, build_model(ARCH, project.scheme.num_classes), ARCH, project.scheme)
            with qtbot.waitSignal(ctrl.prediction_ready, timeout=60000):
                ctrl.request("a.png")
            assert project.get("a.png").model_version.startswith("file:later.pt:")
        finally:
            assert ctrl.shutdown()


def test_errors_arriving_together_share_one_box(window, qtbot):
    window.show_error("Model", "the weights cannot be downloaded")
    window.show_error("Model — a.png", "no model is loaded")
    boxes = _boxes(window)
    assert len(boxes) == 1
    assert "cannot be downloaded" in boxes[0].text() and "no model is loaded" in boxes[0].text()
    boxes[0].done(0)
    qtbot.waitUntil(lambda: not _boxes(window), timeout=10000)
    window.show_error("Export", "a later, separate problem")
    qtbot.waitUntil(lambda: len(_boxes(window)) == 1, timeout=10000)
    assert _boxes(window)[0].text() == "a later, separate problem."  # one sentence


def test_model_menu_switches_to_untrained_weights(window, folder, qtbot):
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=20000)
    assert "untrained" in window.untrained_action.text() and window.untrained_action.isEnabled()
    assert window.weights_file_action.isEnabled()
    window.untrained_action.trigger()  # what the user clicks, before any worker exists
    assert window.model.controller is None and window.model.spec_changes["weights"] == "none"
    window.model.use_weights(
        weights="none", arch=ARCH, device="cpu", max_side=64
    )  # same choice, a small model
    assert window.model.ensure_controller()
    try:
        assert window.model.controller.spec.weights == "none"
        qtbot.waitUntil(lambda: "UNTRAINED" in window.model_status.device_label.toolTip(), timeout=60000)
    finally:
        window.model.shutdown()


def test_exception_in_a_slot_reaches_the_user_and_the_terminal(window, capsys):
    from segstudio.gui.app import install_excepthook

    previous = sys.excepthook
    try:
        hook = install_excepthook(window)
        assert sys.excepthook is hook
        try:
            raise ValueError("boom in a slot")
        except ValueError as error:
            hook(type(error), error, error.__traceback__)
    finally:
        sys.excepthook = previous
    assert "ValueError: boom in a slot" in window.last_error
    assert "Traceback" in capsys.readouterr().err


def test_exception_in_a_worker_thread_reaches_the_user_and_the_log(window, qtbot, capsys):
    """A plain thread (not a TaskRunner job) that dies: shown in the window (from the GUI thread) and logged."""
    import threading

    from segstudio.gui.app import install_excepthook

    previous, previous_thread_hook = sys.excepthook, threading.excepthook
    try:
        install_excepthook(window)

        def work():
            raise KeyError("boom in a worker thread")

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        qtbot.waitUntil(
            lambda: "boom in a worker thread" in (getattr(window, "last_error", "") or ""), timeout=5000
        )
    finally:
        sys.excepthook, threading.excepthook = previous, previous_thread_hook
    assert "KeyError" in window.last_error
    assert "Traceback" in capsys.readouterr().err


def test_status_bar_shows_no_coordinates_off_the_image(window, folder, qtbot):
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=20000)
    window._hovered(10.0, 20.0)  # the canvas's hovered signal, in image coordinates
    assert window.pos_label.text() == "x 10, y 20"
    window._hovered(14.0, -67.0)
    assert window.pos_label.text() == "" and window.class_label.text() == ""


def test_model_status_keeps_the_untrained_warning_visible(window):
    description = (
        "deeplabv3_mobilenet_v3_large, UNTRAINED (random weights: its predictions are meaningless; use a project "
        "model, torchvision's pretrained weights or a checkpoint file to get real ones) "
        "[untrained:deeplabv3_mobilenet_v3_large]"
    )
    window.model_status.on_model_loaded(description, "CPU (2 threads, 2 cores)")
    label = window.model_status.device_label
    assert (
        "UNTRAINED" in label.text() and "meaningless" in label.text() and len(label.text()) < len(description)
    )
    assert description in label.toolTip()


def test_weights_choice_is_remembered_by_the_project(window, folder, qtbot):
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=20000)
    window.untrained_action.trigger()
    window.close_project()
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=20000)
    assert window.model.spec_changes["weights"] == "none"
