"""Connects the window to the inference worker, created only when a model is first needed.

Why lazily: the worker module pulls in torch (seconds of import); the window must appear in
well under a second, so nothing here imports `segstudio.gui.inference_worker` until the user
asks for a prediction (or auto-predict is on and an image opens, after the window is shown).
Tests inject a fake controller with the same signals through `set_controller`.
"""

from __future__ import annotations

import importlib
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from segstudio.core.logs import log_exception
from segstudio.core.project import Project, Status

__all__ = ["ModelLink", "ModelStatus"]


class ModelLink(QObject):
    prediction_ready = Signal(str, object)
    progress = Signal(int, int, str)
    state_changed = Signal(str)
    error = Signal(str, str)
    model_loaded = Signal(str, str)
    embedding_ready = Signal(str, object)  # a SAM image embedding is cached: (rel_path, key)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.controller: Any = None
        self.batch_running = False
        self.spec_changes: dict[str, Any] = {}  # the user's weights choice, applied to the worker's spec
        self.sam: Any = None  # ml.sam_engine.SamRuntime once a SAM checkpoint is loaded

    def set_controller(self, controller: Any) -> None:
        """Use `controller` (the real InferenceController or a test fake) and forward its signals."""
        self.controller = controller
        for name in (
            "prediction_ready",
            "progress",
            "state_changed",
            "error",
            "model_loaded",
            "embedding_ready",
        ):
            signal = getattr(controller, name, None)
            if signal is not None:
                signal.connect(getattr(self, f"_on_{name}"))

    def ensure_controller(self, load_model: bool = True) -> bool:
        """Create the worker now; `load_model=False` (SAM only) defers loading the segmentation model
        to the first prediction request, so picking a SAM checkpoint never reports a missing model."""
        if self.controller is not None:
            return True
        try:
            module = importlib.import_module("segstudio.gui.inference_worker")
            cls = module.InferenceController
            kwargs: dict[str, Any] = {}
            if self.spec_changes:
                from segstudio.ml.spec import ModelSpec

                kwargs["spec"] = ModelSpec.from_project(self.project).with_(**self.spec_changes)
            if not load_model:
                kwargs["load_model"] = False
            try:
                controller = cls(self.project, parent=self, **kwargs)
            except TypeError:
                controller = cls(self.project, **kwargs)
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
        spec = getattr(self.controller, "spec", None)
        if spec is not None and hasattr(spec, "with_"):
            self.controller.set_model(spec.with_(**changes))

    # -- requests -----------------------------------------------------------------------------------------
    def predict(self, rel_path: str) -> None:
        if self.ensure_controller():
            self.controller.request(rel_path)

    def prefetch(self, rel_paths: list[str]) -> None:
        if rel_paths and self.ensure_controller() and hasattr(self.controller, "prefetch"):
            self.controller.prefetch(rel_paths)

    def use_sam(self, runtime: Any) -> None:
        """The inference worker computes this SAM runtime's image embeddings from now on."""
        self.sam = runtime
        if self.ensure_controller(load_model=False) and hasattr(self.controller, "set_sam"):
            self.controller.set_sam(runtime)

    def embed(self, current: str | None, upcoming: list[str], active: bool) -> None:
        """SAM embeddings: `current` first (before predictions when `active`), then `upcoming`."""
        if self.sam is not None and self.controller is not None and hasattr(self.controller, "embed"):
            self.controller.embed(current, upcoming, active)

    def predict_all_new(self) -> int:
        paths = [r.rel_path for r in self.project.images(status=Status.NEW) if not r.error]
        if paths and self.ensure_controller():
            self.batch_running = True
            self.controller.predict_batch(paths)
        return len(paths)

    def cancel_batch(self) -> None:
        if self.controller is not None:
            self.controller.cancel_batch()
        self.batch_running = False

    def shutdown(self) -> None:
        if self.controller is not None and hasattr(self.controller, "shutdown"):
            try:
                self.controller.shutdown()
            except Exception:
                pass

    # -- forwarding ---------------------------------------------------------------------------------------
    def _on_prediction_ready(self, rel_path: str, result: object) -> None:
        self.prediction_ready.emit(rel_path, result)

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if total and done >= total:
            self.batch_running = False
        self.progress.emit(done, total, message)

    def _on_state_changed(self, state: str) -> None:
        self.state_changed.emit(state)

    def _on_error(self, where: str, message: str) -> None:
        self.error.emit(where, message)

    def _on_model_loaded(self, version: str, device: str) -> None:
        self.model_loaded.emit(version, device)

    def _on_embedding_ready(self, rel_path: str, key: object) -> None:
        self.embedding_ready.emit(rel_path, key)


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
