"""Inference worker: runs off the GUI thread, keeps the event loop responsive, supersedes, cancels, hot-swaps."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from segstudio.gui.inference_worker import InferenceController
from segstudio.ml.spec import ModelSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "lraspp_mobilenet_v3_large"
SPEC = ModelSpec(arch=ARCH, weights="none", device="cpu", precision="float32", max_side=64)
NAMES = ("a.png", "b.png", "c.png", "d.png")


@pytest.fixture
def project(noise_project):
    return noise_project(NAMES)


class Gate:
    """Replaces Predictor.predict: records calls and their threads; optionally holds each call until released."""

    def __init__(self, monkeypatch, hold: bool = False, delay: float = 0.0) -> None:
        from segstudio.ml.predict import Predictor

        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.started = threading.Event()
        self.release = threading.Event()
        self.hold, self.delay = hold, delay
        real = Predictor.predict
        gate = self

        def predict(predictor, image, handle=None):
            gate.calls.append(handle.rel_path if handle is not None else "?")
            gate.threads.add(threading.get_ident())
            gate.started.set()
            deadline = time.monotonic() + gate.delay
            while (gate.hold and not gate.release.is_set()) or time.monotonic() < deadline:
                if handle is not None:
                    handle.check_cancelled()
                time.sleep(0.005)
            if gate.hold:
                gate.release.clear()
            return real(predictor, image, handle)

        monkeypatch.setattr(Predictor, "predict", predict)


@pytest.fixture
def controller(qtbot, project):
    ctrl = InferenceController(project, SPEC)
    with qtbot.waitSignal(ctrl.model_loaded, timeout=60000):
        pass
    yield ctrl
    assert ctrl.shutdown()


def _collect(ctrl):
    got: list[str] = []
    ctrl.prediction_ready.connect(lambda rel_path, result: got.append(rel_path))
    return got


def test_runs_off_the_gui_thread_and_saves(qtbot, controller, project, monkeypatch):
    gate = Gate(monkeypatch)
    with qtbot.waitSignal(controller.prediction_ready, timeout=60000) as blocker:
        controller.request("a.png")
    rel_path, result = blocker.args
    assert rel_path == "a.png"
    assert result.labels.shape == (48, 64) and result.labels.dtype == np.uint8
    assert len(gate.threads) == 1 and threading.get_ident() not in gate.threads  # the worker thread
    rec = project.get("a.png")
    assert rec.model_version == f"untrained:{ARCH}"
    assert np.array_equal(project.load_prediction(rec).labels, result.labels)


def test_event_loop_stays_responsive_while_predicting(qtbot, controller, monkeypatch):
    Gate(monkeypatch, delay=0.8)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    with qtbot.waitSignal(controller.prediction_ready, timeout=60000):
        controller.request("b.png")
    timer.stop()
    assert len(ticks) >= 10  # the GUI thread kept running its timer during the 0.8 s+ of work


def test_newer_request_supersedes_and_duplicates_collapse(qtbot, controller, project, monkeypatch):
    gate = Gate(monkeypatch, hold=True)
    got = _collect(controller)
    controller.request("a.png")
    assert gate.started.wait(30)
    controller.request("b.png")  # the user moved on: a is cancelled
    controller.request("b.png")
    controller.request("b.png")
    qtbot.waitUntil(lambda: gate.calls.count("b.png") == 1, timeout=30000)
    gate.release.set()
    qtbot.waitUntil(lambda: got == ["b.png"], timeout=60000)
    qtbot.wait(200)
    assert got == ["b.png"]
    assert gate.calls == ["a.png", "b.png"]
    assert project.load_prediction(project.get("a.png")) is None


def test_batch_is_cancellable(qtbot, controller, project, monkeypatch):
    gate = Gate(monkeypatch, hold=True)
    got = _collect(controller)
    progress = []
    controller.progress.connect(lambda done, total, message: progress.append((done, total)))
    controller.predict_batch(["a.png", "b.png", "c.png", "d.png"])
    assert gate.started.wait(30)
    gate.release.set()
    qtbot.waitUntil(lambda: got == ["a.png"], timeout=60000)
    qtbot.waitUntil(lambda: len(gate.calls) == 2, timeout=30000)  # b is running (held)
    controller.cancel_batch()
    with qtbot.waitSignal(controller.state_changed, timeout=30000, check_params_cb=lambda s: s == "idle"):
        pass
    assert got == ["a.png"]
    assert progress == [(1, 4)]
    for name in ("b.png", "c.png", "d.png"):
        assert project.load_prediction(project.get(name)) is None


def test_prefetch_and_stored_predictions_are_reused(qtbot, controller, monkeypatch):
    gate = Gate(monkeypatch)
    got = _collect(controller)
    controller.prefetch(["c.png", "d.png"])
    qtbot.waitUntil(lambda: sorted(got) == ["c.png", "d.png"], timeout=60000)
    assert len(gate.calls) == 2
    controller.request("c.png")  # already predicted by this model version: read back, not recomputed
    qtbot.waitUntil(lambda: got.count("c.png") == 2, timeout=30000)
    assert len(gate.calls) == 2


def test_hot_swap_to_a_checkpoint(qtbot, controller, project, tmp_path, monkeypatch):
    import torch

    from segstudio.ml.models import build_model
    from segstudio.ml.predict import Predictor
    from segstudio.ml.weights import save_checkpoint

    torch.manual_seed(3)
    # fine-tuned with images capped at 40 px: with no explicit max_side the worker predicts at that cap
    path = save_checkpoint(
        tmp_path / "swap.pt",
        build_model(ARCH, project.scheme.num_classes),
        ARCH,
        project.scheme,
        provenance={"max_side": 40},
    )
    caps: list[int | None] = []
    real = Predictor.predict
    monkeypatch.setattr(
        Predictor, "predict", lambda p, image, handle=None: caps.append(p.max_side) or real(p, image, handle)
    )
    with qtbot.waitSignal(controller.model_loaded, timeout=60000) as blocker:
        controller.set_model(SPEC.with_(weights="file", path=str(path), max_side=None))
    description, device = blocker.args
    assert "file:swap.pt" in description and "CPU" in device
    with qtbot.waitSignal(controller.prediction_ready, timeout=60000) as ready:
        controller.request("a.png")
    assert project.get("a.png").model_version.startswith("file:swap.pt:")
    assert caps == [40] and ready.args[1].labels.shape == (48, 64)


def test_errors_become_signals(qtbot, controller):
    with qtbot.waitSignal(controller.error, timeout=30000) as blocker:
        controller.request("missing.png")
    assert blocker.args[0] == "missing.png" and "not part of the project" in blocker.args[1]
    with qtbot.waitSignal(controller.error, timeout=30000) as blocker:
        controller.set_model(SPEC.with_(arch="unet9000"))
    assert blocker.args[0] == "" and "unknown model 'unet9000'" in blocker.args[1]
    with qtbot.waitSignal(controller.error, timeout=30000) as blocker:
        controller.request("a.png")
    assert "no model is loaded" in blocker.args[1]
    # the worker survives errors: a good model works again
    with qtbot.waitSignal(controller.model_loaded, timeout=60000):
        controller.set_model(SPEC)
    with qtbot.waitSignal(controller.prediction_ready, timeout=60000):
        controller.request("a.png")


def test_creating_the_controller_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, segstudio.gui.inference_worker; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_hot_swap_during_a_batch_redoes_the_interrupted_image(qtbot, controller, project, monkeypatch):
    gate = Gate(monkeypatch, hold=True)
    got = _collect(controller)
    progress = []
    controller.progress.connect(lambda done, total, message: progress.append((done, total)))
    controller.predict_batch(["a.png", "b.png"])
    assert gate.started.wait(30)  # a is running (held)
    with qtbot.waitSignal(controller.model_loaded, timeout=60000):
        controller.set_model(SPEC.with_(arch="deeplabv3plus_mobilenet_v3_large"))
    gate.hold = False
    qtbot.waitUntil(lambda: sorted(got) == ["a.png", "b.png"], timeout=60000)
    assert gate.calls == ["a.png", "a.png", "b.png"]
    assert progress == [(1, 2), (2, 2)]
    for name in ("a.png", "b.png"):
        assert project.get(name).model_version == "untrained:deeplabv3plus_mobilenet_v3_large"
