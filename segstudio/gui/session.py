"""The editing session: which image is open, its document, autosave, status moves, predictions.

Kept out of `main_window.py` so the window stays wiring. Saving never blocks the GUI: the
labels are copied (a couple of milliseconds) and written by one background writer thread in
order; `flush()` waits for it on image switch and close. Every finished stroke is queued for
saving at once (other changes after a short timer), so killing the app loses at most the stroke
in progress.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.document import UNLABELED, MaskDocument
from segstudio.core.errors import SegStudioError
from segstudio.core.history import Box, HistoryStore
from segstudio.core.project import ImageRecord, Project, Status
from segstudio.core.logs import log_exception

__all__ = ["EditorSession", "ImageCache"]


class ImageCache:
    """Decoded images, least recently used dropped; neighbours are decoded ahead in a thread."""

    def __init__(self, project: Project, capacity: int = 6) -> None:
        self.project = project
        self.capacity = capacity
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segstudio-prefetch")
        self._inflight: dict[str, Future] = {}

    def get(self, rec: ImageRecord) -> np.ndarray:
        with self._lock:
            image = self._images.get(rec.rel_path)
            if image is not None:
                self._images.move_to_end(rec.rel_path)
                return image
            future = self._inflight.get(rec.rel_path)
        if future is not None:
            try:
                return future.result()
            except Exception:  # noqa: BLE001 - fall through to a direct load that raises properly
                pass
        image = self.project.load_image(rec)
        self._put(rec.rel_path, image)
        return image

    def contains(self, rel_path: str) -> bool:
        with self._lock:
            return rel_path in self._images

    def _put(self, key: str, image: np.ndarray) -> None:
        with self._lock:
            self._images[key] = image
            self._images.move_to_end(key)
            while len(self._images) > self.capacity:
                self._images.popitem(last=False)

    def prefetch(self, records: list[ImageRecord]) -> None:
        for rec in records:
            if rec.error:
                continue
            with self._lock:
                if rec.rel_path in self._images or rec.rel_path in self._inflight:
                    continue
                self._inflight[rec.rel_path] = self._pool.submit(self._load, rec)

    def _load(self, rec: ImageRecord) -> np.ndarray:
        try:
            image = self.project.load_image(rec)
            self._put(rec.rel_path, image)
            return image
        finally:
            with self._lock:
                self._inflight.pop(rec.rel_path, None)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class EditorSession(QObject):
    """Open image + document + saving. Signals are emitted on the GUI thread."""

    image_opened = Signal(object, object, object)  # ImageRecord, image ndarray | None, MaskDocument | None
    record_changed = Signal(object)  # ImageRecord (status / confidence changed)
    prediction_changed = Signal()  # the current document's prediction layer changed
    error = Signal(str)
    image_problem = Signal(str, str)  # rel_path, reason: one image cannot be used (no decision needed)
    _saved = Signal(object)  # internal: from the writer thread
    _failed = Signal(str)

    def __init__(self, project: Project, autosave_ms: int = 800, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.histories = HistoryStore()
        self.cache = ImageCache(project)
        self.record: ImageRecord | None = None
        self.image: np.ndarray | None = None
        self.document: MaskDocument | None = None
        self.model_version: str | None = None
        self._had_mask = False
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segstudio-writer")
        self._pending: list[Future] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(autosave_ms)
        self._timer.timeout.connect(self.save)
        self._saved.connect(self._on_saved)
        self._failed.connect(self.error)
        self.neighbours: Callable[[str], list[str]] | None = None  # for prefetching

    # -- opening -------------------------------------------------------------------------------------
    def open_image(self, rel_path: str) -> bool:
        """Save the current image and open `rel_path`; False (and `error`) if it is not in the project."""
        rec = self.project.get(rel_path)
        if rec is None:
            self.image_problem.emit(rel_path, "it is no longer in the folder (moved or deleted)")
            return False
        self.flush()
        if self.document is not None:
            self.document.remove_listener(self._on_doc_changed)
        self.record, self.image, self.document = rec, None, None
        if rec.error or rec.shape is None:
            self.image_opened.emit(rec, None, None)
            return True
        try:
            image = self.cache.get(rec)
            mask = self.project.load_mask(rec)
            prediction = self.project.load_prediction(rec)
        except SegStudioError as exc:
            fresh = self.project.get(rel_path)  # a decode failure was recorded: badge and counters follow
            if fresh is not None and fresh.error != rec.error:
                rec = self.record = fresh
                self.record_changed.emit(fresh)
            self.image_problem.emit(rel_path, str(exc))
            self.image_opened.emit(rec, None, None)
            return True
        self._had_mask = mask is not None
        if mask is None:
            mask = prediction.labels.copy() if prediction is not None else np.full(rec.shape, UNLABELED, np.uint8)
        doc = MaskDocument(mask, self.histories.get(rec.rel_path))
        if prediction is not None:
            doc.set_prediction(prediction.labels, prediction.confidence, prediction.raw_labels, notify=False)
        doc.add_listener(self._on_doc_changed)
        doc.add_prediction_listener(self.prediction_changed.emit)
        self.image, self.document = image, doc
        self.image_opened.emit(rec, image, doc)
        if self.neighbours is not None:
            recs = [r for p in self.neighbours(rel_path) if (r := self.project.get(p)) is not None]
            self.cache.prefetch(recs)
        return True

    def close_image(self) -> None:
        """Forget the open image without saving (its file left the folder; saved strokes stay stored)."""
        self._timer.stop()
        if self.document is not None:
            self.document.remove_listener(self._on_doc_changed)
        self.record, self.image, self.document = None, None, None

    @property
    def pristine(self) -> bool:
        """No saved mask and no edit yet: a prediction may replace the labels shown."""
        return self.document is not None and not self._had_mask and not self.document.edited

    # -- saving ----------------------------------------------------------------------------------------
    def _on_doc_changed(self, box: Box | None) -> None:
        doc = self.document
        if doc is not None and not doc.in_stroke:
            self._timer.start()

    def stroke_finished(self) -> None:
        """The tool closed an undo step: save it now (in the writer thread), so a crash loses nothing done."""
        self.histories.enforce_budget()
        self.save()

    def save(self) -> None:
        """Queue a save of the current mask if it changed (returns at once)."""
        self._timer.stop()
        doc, rec = self.document, self.record
        if doc is None or rec is None or not doc.dirty or doc.in_stroke:
            return
        labels = doc.labels.copy()
        doc.mark_saved()
        self._had_mask = True
        status = Status.DONE if rec.status == Status.DONE else Status.IN_PROGRESS
        if rec.status != status:
            self.record = rec = _with_status(rec, status)  # shown at once; the writer confirms
            self.record_changed.emit(rec)
        self._submit(lambda: self.project.save_mask(rec, labels, status))

    def _submit(self, job: Callable[[], Any]) -> None:
        def run() -> Any:
            try:
                result = job()
            except Exception as exc:  # noqa: BLE001 - shown to the user; the edit stays in memory
                log_exception("save", exc)
                self._failed.emit(f"saving failed: {exc}")
                raise
            if isinstance(result, ImageRecord):
                self._saved.emit(result)
            return result

        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._writer.submit(run))

    def flush(self) -> None:
        """Save now and wait for every queued write (image switch, close)."""
        if self.document is not None and self.document.in_stroke:
            self.document.end_stroke()
        self.save()
        for future in self._pending:
            try:
                future.result(timeout=60)
            except Exception:  # noqa: BLE001 - already reported through `error`
                pass
        self._pending.clear()

    def _on_saved(self, rec: ImageRecord) -> None:
        if self.record is not None and rec.rel_path == self.record.rel_path:
            self.record = rec
        self.record_changed.emit(rec)

    # -- status ----------------------------------------------------------------------------------------
    def set_status(self, status: Status) -> ImageRecord | None:
        """Mark the current image (saving its mask first; `done` always writes the mask)."""
        rec, doc = self.record, self.document
        if rec is None:
            return None
        self.flush()
        rec = self.record or rec
        try:
            if doc is not None and status == Status.DONE:
                rec = self.project.save_mask(rec, doc.labels.copy(), Status.DONE)
                doc.mark_saved()
                self._had_mask = True
            else:
                rec = self.project.set_status(rec, status)
        except SegStudioError as exc:
            self.error.emit(str(exc))
            return None
        self.record = rec
        self.record_changed.emit(rec)
        return rec

    # -- predictions -------------------------------------------------------------------------------------
    def apply_prediction(self, rel_path: str, result: Any) -> None:
        """A prediction arrived (from the inference worker, any time).

        It goes to the prediction layer; only a pristine document (nothing saved, nothing edited)
        shows it as its labels. The user's edits are never overwritten.
        """
        labels = getattr(result, "labels", None)
        if labels is None:
            return
        confidence = getattr(result, "confidence", None)
        raw = getattr(result, "raw_labels", None)
        rec = self.project.get(rel_path)
        if rec is None:
            return
        if not self.project.has_prediction(rec) or rec.status == Status.NEW:
            # The worker did not store it: keep it in the project so it survives a restart.
            version = self.model_version or getattr(result, "model_version", None) or "unknown"
            conf = confidence if confidence is not None else np.full(labels.shape, 255, np.uint8)
            self._submit(lambda: self.project.save_prediction(rec, labels, conf, version, raw))
        else:
            self.record_changed.emit(rec)
        doc = self.document
        if doc is None or self.record is None or self.record.rel_path != rel_path or labels.shape != doc.shape:
            return
        pristine = self.pristine
        doc.set_prediction(labels, confidence, raw)
        if pristine:
            shown = doc.shown_prediction
            assert shown is not None
            doc.reset(shown)  # a display refresh, not an edit: no dirty flag, no undo step

    def set_use_raw_prediction(self, raw: bool) -> None:
        doc = self.document
        if doc is None:
            return
        pristine = self.pristine
        doc.use_raw_prediction = raw
        if pristine and doc.shown_prediction is not None:
            doc.reset(doc.shown_prediction)
        self.prediction_changed.emit()

    # -- teardown ----------------------------------------------------------------------------------------
    def close(self) -> None:
        self.flush()
        self._writer.shutdown(wait=True)
        self.cache.shutdown()


def _with_status(rec: ImageRecord, status: Status) -> ImageRecord:
    from dataclasses import replace

    return replace(rec, status=status)
