"""Connects the window to the inference worker, created only when a model is first needed.

Why lazily: the worker module pulls in torch (seconds of import); the window must appear in
well under a second, so nothing here imports `segstudio.gui.inference_worker` until the user
asks for a prediction (or auto-predict is on and an image opens, after the window is shown).
The worker is held as an `InferenceClient` (gui/inference_client.py); `ModelLink` relays every
one of its signals (`SIGNAL_NAMES`), so the window connects to the link once, whichever worker
(the real one, or a test fake through `set_controller`) is behind it.
"""

from __future__ import annotations

import importlib
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from segstudio.core.logs import log_exception
from segstudio.core.project import Project, Status
from segstudio.gui.inference_client import SIGNAL_NAMES, InferenceClient, InferenceSignals

__all__ = ["ModelLink", "ModelStatus"]


class ModelLink(InferenceSignals):
    """The window's side of the seam: the worker's signals (all of them, relayed) and its requests."""

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.controller: InferenceClient | None = None
        self.spec_changes: dict[str, Any] = {}  # the user's weights choice, applied to the worker's spec
        self.sam: Any = None  # ml.sam_engine.SamRuntime once a SAM checkpoint is loaded

    def set_controller(self, controller: InferenceClient) -> None:
        """Use `controller` (the real InferenceController or a test fake) and relay all its signals."""
        self.controller = controller
        for name in SIGNAL_NAMES:
            getattr(controller, name).connect(getattr(self, name))

    def ensure_controller(self, load_model: bool = True) -> bool:
        """Create the worker now; `load_model=False` (SAM only) defers loading the segmentation model
        to the first prediction request, so picking a SAM checkpoint never reports a missing model."""
        if self.controller is not None:
            return True
        try:
            module = importlib.import_module("segstudio.gui.inference_worker")
            spec = None
            if self.spec_changes:
                from segstudio.ml.spec import ModelSpec

                spec = ModelSpec.from_project(self.project).with_(**self.spec_changes)
            controller = module.InferenceController(
                self.project, spec=spec, parent=self, load_model=load_model
            )
        except Exception as exc:
            log_exception("model", exc)
            self.error.emit("model", f"the model worker is not available: {exc}")
            return False
        self.set_controller(controller)
        return True

    def use_weights(self, **changes: Any) -> None:
        """Switch the weights (e.g. weights="file", path=...): hot-swapped into a running worker,
        otherwise used when the worker starts."""
        self.spec_changes = dict(changes)
        self.change_model(**changes)

    def change_model(self, **changes: Any) -> None:
        """A running worker loads its spec with `changes` (crf=..., version=...) before its next
        prediction; without a worker nothing happens (it starts from the project's settings)."""
        if self.controller is not None:
            self.controller.set_model(self.controller.spec.with_(**changes))

    # -- requests -----------------------------------------------------------------------------------------
    def predict(self, rel_path: str) -> None:
        if self.ensure_controller():
            assert self.controller is not None
            self.controller.request(rel_path)

    def prefetch(self, rel_paths: list[str]) -> None:
        if rel_paths and self.ensure_controller():
            assert self.controller is not None
            self.controller.prefetch(rel_paths)

    def use_sam(self, runtime: Any) -> None:
        """The inference worker computes this SAM runtime's image embeddings from now on."""
        self.sam = runtime
        if self.ensure_controller(load_model=False):
            assert self.controller is not None
            self.controller.set_sam(runtime)

    def embed(self, current: str | None, upcoming: list[str], active: bool) -> None:
        """SAM embeddings: `current` first (before predictions when `active`), then `upcoming`."""
        if self.sam is not None and self.controller is not None:
            self.controller.embed(current, upcoming, active)

    def predict_all_new(self) -> int:
        paths = [r.rel_path for r in self.project.images(status=Status.NEW) if not r.error]
        if paths and self.ensure_controller():
            assert self.controller is not None
            self.controller.predict_batch(paths)
        return len(paths)

    def cancel_batch(self) -> None:
        if self.controller is not None:
            self.controller.cancel_batch()

    def shutdown(self) -> None:
        if self.controller is not None:
            try:
                self.controller.shutdown()
            except Exception as exc:  # closing must go on; the log keeps why the worker did not stop
                log_exception("model.shutdown", exc)


class ModelStatus(QWidget):
    """Status-bar part for the model: device, worker state, batch progress with a Cancel button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link: ModelLink | None = None
        self.device_label = QLabel("device: not loaded", self)
        self.worker_label = QLabel("model: idle", self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(200)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.device_label, self.worker_label, self.progress_bar, self.cancel_button):
            layout.addWidget(widget)
        self._show_progress(False)

    def attach(self, link: ModelLink | None) -> None:
        self.link = link
        self._show_progress(False)
        self.worker_label.setText("model: idle")
        self.device_label.setText("device: not loaded")  # never the previous project's model
        self.device_label.setToolTip("")
        if link is not None:
            link.progress.connect(self.on_progress)
            link.state_changed.connect(lambda state: self.worker_label.setText(f"model: {state}"))
            link.model_loaded.connect(self.on_model_loaded)

    def _show_progress(self, visible: bool) -> None:
        self.progress_bar.setVisible(visible)
        self.cancel_button.setVisible(visible)

    def batch_started(self, count: int) -> None:
        self.progress_bar.setRange(0, max(1, count))
        self.progress_bar.setValue(0)
        self._show_progress(count > 0)

    def cancel(self) -> None:
        if self.link is not None:
            self.link.cancel_batch()
        self._show_progress(False)

    def on_progress(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat("%v / %m")
        self.progress_bar.setToolTip(message)
        self._show_progress(not (total > 0 and done >= total))

    def set_planned(self, what: str) -> None:
        """Before a model is loaded: which one predictions will use (loaded on the first prediction)."""
        self.device_label.setText(f"model: {what} · not loaded yet")
        self.device_label.setToolTip(
            "The model loads when the first prediction is asked for (Ctrl+P, or "
            "auto-predict). Choose another in the Model menu."
        )

    def on_model_loaded(self, version: str, device: str) -> None:
        """One short status-bar line (the full model description is the tooltip); an untrained model says so."""
        full = f"device: {device} · model {version}"
        tag = version[version.rfind("[") + 1 : -1] if version.endswith("]") and "[" in version else version
        if tag.startswith("untrained:"):
            tag = f"{tag.removeprefix('untrained:')} UNTRAINED (random weights: predictions are meaningless)"
        self.device_label.setToolTip(full)
        self.device_label.setText(f"device: {device} · model {tag}")
