"""The GUI <-> inference-worker seam: one signal set, all of it relayed, and the notes reach the user."""

from __future__ import annotations

import inspect

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from segstudio.gui.inference_client import SIGNAL_NAMES, InferenceClient, InferenceSignals, signal_signatures
from segstudio.gui.inference_worker import InferenceController
from segstudio.gui.model_link import ModelLink
from tests.fakes import FakeInferenceClient

ARCH = "lraspp_mobilenet_v3_large"
#: an argument of each Qt type a signal can carry
SAMPLE = {"QString": "a.png", "int": 3, "PyObject": object()}


def _arguments(signature: str) -> list[object]:
    types = signature[signature.index("(") + 1 : -1]
    return [SAMPLE[t] for t in types.split(",")] if types else []


def test_the_worker_declares_exactly_the_seam_signals():
    """A signal added to the controller (or its worker) instead of InferenceSignals fails here."""
    assert signal_signatures(InferenceController) == signal_signatures(InferenceSignals)
    assert set(SIGNAL_NAMES) >= {"prediction_ready", "error", "status_message", "embedding_ready"}


def test_model_link_relays_every_worker_signal(qtbot, tmp_path):
    link = ModelLink(project=None)  # type: ignore[arg-type]  # relaying needs no project
    fake = FakeInferenceClient()
    link.set_controller(fake)
    worker_signals = signal_signatures(InferenceController)
    assert worker_signals, "the introspection found no signals"
    for name, signature in worker_signals.items():
        args = _arguments(signature)
        relayed = getattr(link, name, None)
        assert relayed is not None, f"ModelLink has no {name} signal: the window never hears of it"
        with qtbot.waitSignal(relayed, timeout=2000) as blocker:
            getattr(fake, name).emit(*args)
        assert blocker.args == args, name


@pytest.mark.parametrize("cls", [InferenceController, FakeInferenceClient])
def test_controller_and_fake_implement_the_protocol(cls):
    members = [
        m for m in dir(InferenceClient) if not m.startswith("_") and callable(getattr(InferenceClient, m))
    ]
    assert {"request", "prefetch", "predict_batch", "set_model", "shutdown"} <= set(members)
    for name in members:
        want = inspect.signature(getattr(InferenceClient, name))
        got = inspect.signature(getattr(cls, name))
        assert list(got.parameters) == list(want.parameters), f"{cls.__name__}.{name}{got} != {want}"
    assert signal_signatures(cls) == signal_signatures(InferenceSignals)
    if cls is FakeInferenceClient:
        assert isinstance(cls(), InferenceClient)


def _force_gpu_out_of_memory(monkeypatch):
    """The predictor believes its model is on a CUDA GPU that has no memory left: every forward pass
    raises torch.OutOfMemoryError until ml/predict.py's fallback moves it to the CPU (the real path)."""
    import torch

    from segstudio.ml.predict import Predictor

    real_forward, real_preprocess = Predictor._forward_tiled, Predictor.preprocess
    tried: list[tuple[str, int]] = []

    def forward_tiled(self, x, handle, tile_size):
        tried.append((self.device.type, tile_size))
        if self.device.type == "cuda":
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (forced by the test)"
            )
        return real_forward(self, x, handle, tile_size)

    def preprocess(self, image):
        x = real_preprocess(self, image)  # on the real (CPU) device
        if not tried:
            self.device = torch.device("cuda")  # from here on it believes it runs on a GPU
        return x

    monkeypatch.setattr(Predictor, "_forward_tiled", forward_tiled)
    monkeypatch.setattr(Predictor, "preprocess", preprocess)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    return tried


def test_out_of_memory_on_predict_is_shown_in_the_status_bar_and_problems(
    shown_window, demo_photos, qtbot, monkeypatch, one_torch_thread
):
    tried = _force_gpu_out_of_memory(monkeypatch)
    window = shown_window(demo_photos)
    window.model.use_weights(weights="none", arch=ARCH, device="cpu", precision="float32", max_side=64)
    shown: list[str] = []
    window.statusBar().messageChanged.connect(shown.append)
    doc = window.session.document
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # predict this image
    qtbot.waitUntil(lambda: doc.prediction is not None, timeout=120_000)
    assert tried[0][0] == "cuda" and tried[-1][0] == "cpu"  # the fallback really ran
    qtbot.waitUntil(lambda: any("continuing on the CPU" in m for m in shown), timeout=10_000)
    assert any("GPU out of memory: retrying with 512 px tiles" in m for m in shown)
    notes = window.problems.notes()
    assert any("GPU out of memory even with small tiles: continuing on the CPU" in n for n in notes), notes
    assert window.problems_button.isVisible()
    window.problems_button.click()  # what the user does to read them
    assert window.problems_dock.isVisible()
    assert window.problems.list.item(0).text().startswith("Model: ")
    window.model.shutdown()


def test_plain_notes_go_to_the_status_bar_only(shown_window, demo_photos, qtbot):
    window = shown_window(demo_photos)
    fake = FakeInferenceClient(window.project)
    window.model.set_controller(fake)
    shown: list[str] = []
    window.statusBar().messageChanged.connect(shown.append)
    fake.status_message.emit("bfloat16: 99.80% agreement with float32, 1.9x faster: using bfloat16", "info")
    qtbot.waitUntil(lambda: any("using bfloat16" in m for m in shown), timeout=5000)
    assert window.problems.notes() == [] and not window.problems_button.isVisible()
