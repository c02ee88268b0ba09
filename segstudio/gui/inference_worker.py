"""The inference worker: one long-lived QThread that owns the model; the GUI thread never runs model or CRF code.

API (all methods are called from the GUI thread and return at once)::

    controller = InferenceController(project, spec=ModelSpec(...), parent=window)
    controller.request(rel_path)          # the image on screen: first in line; a newer request supersedes
    controller.prefetch([rel_path, ...])  # the next images in browser order (replaces the previous list)
    controller.predict_batch([...])       # a cancellable batch, after the current image and prefetches
    controller.cancel_batch()
    controller.set_model(spec)            # hot swap: loaded in the worker before the next prediction
    controller.set_sam(runtime)           # an ml.sam_engine.SamRuntime: the worker computes its embeddings
    controller.embed(rel_path, [next, ...], active)  # SAM embeddings: this image, then the next ones
    controller.shutdown()                 # cancel everything and join the thread (window close)

Signals: `gui.inference_client.InferenceSignals` (declared there once; the controller emits them
from the worker thread and Qt delivers them queued, in the GUI thread). The controller is the
`InferenceClient` that `gui.model_link.ModelLink` holds.

Why this shape (Orange3's concurrent pattern, DESIGN.md): the work is the plain `ml.predict.Predictor`
with a cancel handle; this module only queues requests and moves the work off the GUI thread.
torch is imported lazily inside the thread, so creating the controller costs nothing at startup.
Predictions are saved through `Project.save_prediction` (thread-safe), which never touches
corrected masks; images already predicted by the loaded model version are read back, not recomputed.

SAM image embeddings (the encoder half of the ``sam`` click engine) are jobs of this thread too, so
the CPU runs one model at a time. Priority: the image on screen's embedding while SAM is the active
engine, then every prediction (current, prefetch, batch), then the remaining embeddings (the
current image's when SAM is not active, then the next images). A running embedding stops within
one ViT block when the image on screen needs the worker instead (its prediction, or its embedding
while SAM is active) and is redone later if still wanted. The plan and the bounded cache are
`segstudio.ml.sam_cache`; the smart tools decode clicks from the cache on their side.
A controller created only for SAM (`load_model=False`) loads the segmentation model at the first
prediction request, not at once.
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, QThread

from segstudio.core.errors import CancelledError, ProjectError, SegStudioError
from segstudio.core.logs import log_exception
from segstudio.core.task_handle import FallbackNote
from segstudio.gui.inference_client import InferenceSignals, Severity
from segstudio.ml.spec import ModelSpec

__all__ = ["CHOOSE_WEIGHTS_HINT", "InferenceController"]

#: what to do when no model can be loaded, in the app's own words (the CLI's --weights does not apply here)
CHOOSE_WEIGHTS_HINT = (
    "In SegStudio choose weights in the Model menu: 'Use weights file…' (a SegStudio checkpoint or a "
    "torchvision .pth file), or 'Use untrained model' (random weights: predictions are meaningless, "
    "only for trying the app)."
)

# job kinds, in priority order
CURRENT, PREFETCH, BATCH = "current", "prefetch", "batch"
EMBED_CURRENT, EMBED_AHEAD = "embed-current", "embed-ahead"  # SAM embeddings (see the module docstring)


class _JobCancelled(CancelledError):
    pass


class _JobHandle:
    """TaskHandle for one job: cancelled when superseded, when its batch is cancelled, or on shutdown."""

    def __init__(self, worker: _WorkerThread, kind: str, rel_path: str) -> None:
        self._worker = worker
        self.kind = kind
        self.rel_path = rel_path
        self.cancelled = threading.Event()

    def set_status(self, message: str) -> None:
        severity = Severity.WARNING if isinstance(message, FallbackNote) else Severity.INFO
        self._worker.out.status_message.emit(str(message), severity)

    def set_progress(self, done: int, total: int) -> None:
        pass  # tile progress is too fine for the status bar; batch progress is per image

    def is_cancelled(self) -> bool:
        return self.cancelled.is_set() or self._worker.stopping

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise _JobCancelled(f"prediction of {self.rel_path} cancelled")


class _WorkerThread(QThread):
    """Emits on `out` (the controller's signals) from this thread; Qt queues them to the GUI thread."""

    def __init__(self, out: InferenceSignals, project: Any, spec: ModelSpec, load_model: bool = True) -> None:
        super().__init__()
        self.out = out
        self.project = project
        self.stopping = False
        self._cond = threading.Condition()
        self._spec: ModelSpec | None = spec  # a spec waiting to be loaded
        self._current: str | None = None
        self._prefetch: deque[str] = deque()
        self._batch: deque[str] = deque()
        self._batch_total = 0
        self._batch_done = 0
        self._running: _JobHandle | None = None
        self._loaded: Any = None
        self._predictor: Any = None
        self._failed_spec: ModelSpec | None = None  # the spec whose load failed: retried on the next request
        self._failure_reported = False  # its error was just shown; don't add a second, vaguer one
        self._load_model = load_model  # False: wait for the first prediction request before loading
        self._sam: Any = None  # ml.sam_engine.SamRuntime once the user picked a SAM checkpoint
        self._sam_active = False  # SAM is the engine in use: its current embedding goes first
        self._embed_current: str | None = None
        self._embed_ahead: deque[str] = deque()
        self._embedding: _JobHandle | None = None  # the embedding being computed (cancellable per ViT block)

    # -------------------------------------------------------------- called from the GUI thread

    def submit_current(self, rel_path: str) -> None:
        with self._cond:
            self._load_model = True
            self._preempt_embedding()
            running = self._running
            if running is not None and running.rel_path == rel_path:
                self._current = None  # already being computed: the newer request supersedes nothing new
            else:
                self._current = rel_path
                if running is not None and running.kind in (CURRENT, PREFETCH):
                    running.cancelled.set()  # the user moved on: do the image on screen first
            self._cond.notify_all()

    def submit_prefetch(self, rel_paths: list[str]) -> None:
        with self._cond:
            self._load_model = self._load_model or bool(rel_paths)
            self._prefetch = deque(p for p in rel_paths if p != self._current)
            self._cond.notify_all()

    def submit_batch(self, rel_paths: list[str]) -> None:
        with self._cond:
            self._load_model = True
            fresh = [p for p in rel_paths if p not in self._batch]
            self._batch.extend(fresh)
            self._batch_total += len(fresh)
            self._cond.notify_all()

    def cancel_batch(self) -> None:
        with self._cond:
            self._batch.clear()
            self._batch_total = self._batch_done = 0
            if self._running is not None and self._running.kind == BATCH:
                self._running.cancelled.set()
            self._cond.notify_all()

    def submit_model(self, spec: ModelSpec) -> None:
        with self._cond:
            self._spec = spec
            running = self._running
            if running is not None:  # redo the interrupted image with the new model
                if running.kind == CURRENT and self._current is None:
                    self._current = running.rel_path
                elif running.kind == PREFETCH:
                    self._prefetch.appendleft(running.rel_path)
                elif running.kind == BATCH:
                    self._batch.appendleft(running.rel_path)
                running.cancelled.set()
            self._cond.notify_all()

    def _preempt_embedding(self) -> None:
        """A prediction of the image on screen is wanted: a running embedding that is not the active
        engine's current one stops (within one ViT block) and goes back to the front of its queue."""
        running = self._embedding
        if (
            running is None
            or running.cancelled.is_set()
            or (self._sam_active and running.kind == EMBED_CURRENT)
        ):
            return
        running.cancelled.set()
        if running.kind == EMBED_CURRENT and self._embed_current is None:
            self._embed_current = running.rel_path
        elif running.kind == EMBED_AHEAD and running.rel_path not in self._embed_ahead:
            self._embed_ahead.appendleft(running.rel_path)

    def submit_sam(self, runtime: Any) -> None:
        with self._cond:
            self._sam = runtime
            self._embed_current, self._embed_ahead = None, deque()
            if self._embedding is not None:
                self._embedding.cancelled.set()  # the previous checkpoint's work is of no use now

    def submit_embeddings(self, current: str | None, upcoming: list[str], active: bool) -> None:
        """Replace the embedding queue: `current` first, then what `upcoming` needs (not cached)."""
        from segstudio.ml.sam_cache import embedding_plan

        runtime = self._sam
        if runtime is None:
            return
        plan = embedding_plan(current, upcoming, lambda p: self._embedding_key(p) in runtime.cache)
        with self._cond:
            self._sam_active = active
            self._embed_current = plan.pop(0) if plan and plan[0] == current else None
            self._embed_ahead = deque(plan)
            running = self._embedding
            if (
                running is not None
                and active
                and self._embed_current is not None
                and running.rel_path != self._embed_current
            ):
                running.cancelled.set()  # the user moved on: embed the image on screen first
            self._cond.notify_all()

    def _embedding_key(self, rel_path: str) -> tuple[str, str] | None:
        from segstudio.ml.sam_cache import embedding_key

        rec = self.project.get(rel_path)
        return None if rec is None else embedding_key(rec.rel_path, rec.content_hash)

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            if self._running is not None:
                self._running.cancelled.set()
            self._cond.notify_all()

    # -------------------------------------------------------------- the worker thread

    def _next_job(self) -> tuple[str, Any] | None:
        """Wait for work; returns ("model", spec) or (kind, rel_path); None when stopping."""
        with self._cond:
            while True:
                if self.stopping:
                    return None
                if self._sam_active and self._embed_current is not None:
                    path, self._embed_current = self._embed_current, None
                    return self._embedding_job(EMBED_CURRENT, path)
                if self._spec is not None and self._load_model:
                    spec, self._spec = self._spec, None
                    return "model", spec
                if self._current is not None:
                    path, self._current = self._current, None
                    return CURRENT, path
                if self._prefetch:
                    return PREFETCH, self._prefetch.popleft()
                if self._batch:
                    return BATCH, self._batch.popleft()
                if self._embed_current is not None:
                    path, self._embed_current = self._embed_current, None
                    return self._embedding_job(EMBED_CURRENT, path)
                if self._embed_ahead:
                    return self._embedding_job(EMBED_AHEAD, self._embed_ahead.popleft())
                self.out.state_changed.emit("idle")
                self._cond.wait()

    def _embedding_job(self, kind: str, rel_path: str) -> tuple[str, str]:
        """Under the lock: the job is cancellable from the moment it leaves its queue."""
        self._embedding = _JobHandle(self, kind, rel_path)
        return kind, rel_path

    def run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            kind, payload = job
            if kind == "model":
                self._load(payload)
            elif kind in (EMBED_CURRENT, EMBED_AHEAD):
                self._embed(kind, payload)
            else:
                self._predict(kind, payload)

    def _load(self, spec: ModelSpec) -> None:
        self.out.state_changed.emit("loading")
        try:
            from segstudio.ml.device import device_label
            from segstudio.ml.predict import load_predictor

            if self._loaded is not None:  # free the old model's memory before loading the new one
                self._loaded = self._predictor = None
            loaded, predictor = load_predictor(
                spec, self.project.scheme, project=self.project, coarse_probabilities=True
            )
        except Exception as exc:
            log_exception("inference.load", exc)
            self._loaded = self._predictor = None
            self._failed_spec, self._failure_reported = spec, True
            self.out.state_changed.emit("error")
            self.out.error.emit("", _load_message(exc))
            return
        self._loaded, self._predictor = loaded, predictor
        self._failed_spec = None
        self.out.model_loaded.emit(f"{loaded.description} [{loaded.version}]", device_label(loaded.device))

    def _predict(self, kind: str, rel_path: str) -> None:
        retried = False
        if self._predictor is None and self._failed_spec is not None and not self._failure_reported:
            retried = (
                True  # a later request: the user may have fixed the cause (e.g. copied the weights file)
            )
            self._load(self._failed_spec)
        if self._predictor is None:
            if kind != CURRENT:
                with self._cond:  # one message for the whole queue, not one per image
                    self._prefetch.clear()
                    self._batch.clear()
                    self._batch_total = self._batch_done = 0
            if not retried:  # a failed retry has just said why itself
                self.out.error.emit(
                    rel_path, "no model is loaded, so it was not predicted (the model error says why)"
                )
            self._failure_reported = False
            return
        handle = _JobHandle(self, kind, rel_path)
        with self._cond:
            self._running = handle
        self.out.state_changed.emit("predicting")
        try:
            rec = self.project.get(rel_path)
            if rec is None:
                raise ProjectError(
                    f"{rel_path} is not part of the project; it may have been moved or deleted"
                )
            result = self._existing(rec)
            if result is None:
                # a loader: the full-resolution image is dropped once its small copies are made (bounded memory)
                result = self._predictor.predict(lambda: self.project.load_image(rec), handle)
                handle.check_cancelled()
                from segstudio.ml.predict import store_prediction

                crf_ran = self._predictor.crf is not None
                store_prediction(self.project, rec, result, self._loaded.version, crf_ran=crf_ran)
            self.out.prediction_ready.emit(rel_path, result)
        except CancelledError:
            pass
        except Exception as exc:
            log_exception("inference.predict", exc)
            self.out.error.emit(rel_path, _message(exc))
        finally:
            with self._cond:
                self._running = None
                if kind == BATCH and not handle.cancelled.is_set():
                    self._batch_done += 1
                    self.out.progress.emit(self._batch_done, self._batch_total, rel_path)
                    if not self._batch:
                        self._batch_total = self._batch_done = 0

    def _embed(self, kind: str, rel_path: str) -> None:
        """One SAM image embedding into the runtime's cache (skipped when it is there already)."""
        from segstudio.ml.sam_cache import embedding_key

        runtime, handle = self._sam, self._embedding
        try:
            if runtime is None or handle is None:
                return
            rec = self.project.get(rel_path)
            if rec is None or rec.error:
                return  # gone or unreadable: the image list says so already
            key = embedding_key(rec.rel_path, rec.content_hash)
            if key not in runtime.cache:
                self.out.state_changed.emit("SAM embedding")  # the status bar reads "model: SAM embedding"
                runtime.embed(key, self.project.load_image(rec), should_stop=handle.is_cancelled)
            self.out.embedding_ready.emit(rel_path, key)
        except CancelledError:
            pass  # superseded (requeued where still wanted) or shutting down
        except Exception as exc:
            log_exception("inference.sam_embedding", exc)
            if kind == EMBED_CURRENT:
                self.out.error.emit(rel_path, f"SAM image embedding failed: {_message(exc)}")
        finally:
            with self._cond:
                self._embedding = None

    def _existing(self, rec: Any) -> Any:
        """The stored prediction when it came from the loaded model version (no need to recompute)."""
        if rec.model_version != self._loaded.version:
            return None
        stored = self.project.load_prediction(rec)
        if stored is None or stored.confidence is None:
            return None
        from segstudio.ml.predict import PredictionResult

        raw = stored.raw_labels if stored.raw_labels is not None else stored.labels
        return PredictionResult(stored.labels, stored.confidence, None, raw, {})


def _load_message(exc: BaseException) -> str:
    """One paragraph: why no model could be loaded, then what to do in the app (not CLI flags)."""
    url = getattr(exc, "url", None)
    if url:
        return (
            f"No model yet: the torchvision weights {getattr(exc, 'weights_name', '')} are not on this computer "
            f"and cannot be downloaded now (offline?). Choose Model → 'Use weights file…' (a SegStudio "
            f"checkpoint, or {url} downloaded on another machine), Model → 'Use untrained model', or fine-tune "
            "on your corrected images (Train → Fine-tune…); the weights download by themselves when online."
        )
    return f"{_message(exc).rstrip('. ')}. {CHOOSE_WEIGHTS_HINT}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, SegStudioError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].name})"


class InferenceController(InferenceSignals):
    """GUI-side facade over the worker thread (an `InferenceClient`); see the module docstring."""

    def __init__(
        self,
        project: Any,
        spec: ModelSpec | None = None,
        parent: QObject | None = None,
        load_model: bool = True,
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.spec = spec or ModelSpec.from_project(project)
        self._worker = _WorkerThread(self, project, self.spec, load_model)
        self._worker.start()

    def request(self, rel_path: str) -> None:
        self._worker.submit_current(rel_path)

    def prefetch(self, rel_paths: list[str]) -> None:
        self._worker.submit_prefetch(list(rel_paths))

    def predict_batch(self, rel_paths: list[str]) -> None:
        self._worker.submit_batch(list(rel_paths))

    def cancel_batch(self) -> None:
        self._worker.cancel_batch()

    def set_model(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._worker.submit_model(spec)

    def set_sam(self, runtime: Any) -> None:
        self._worker.submit_sam(runtime)

    def embed(self, current: str | None, upcoming: list[str], active: bool) -> None:
        self._worker.submit_embeddings(current, list(upcoming), active)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop the worker (cancelling its job) and wait for it; True when it has finished."""
        self._worker.stop()
        return self._worker.wait(timeout_ms)
