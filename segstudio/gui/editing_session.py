"""The editing session: which image is open, its document, autosave, status moves, predictions.

Kept out of `main_window.py` so the window stays wiring. Disk work stays off the GUI thread:

- Saving: the labels are copied (a couple of milliseconds) and written by one background writer
  (`gui.background_tasks.JobQueue`, in order). Every finished stroke is queued at once (other changes after a
  short timer), so killing the app loses at most the stroke in progress. "Mark done" and other
  status moves go through the same queue; the record shown changes at once and the writer confirms
  (or reports the error and the true state comes back).
- Switching images waits only when the image being opened still has writes queued; `flush()`
  (Save, close) waits for all of them.
- Decoding: the neighbours of the open image (their photo, mask and prediction) are decoded ahead
  on a background queue, so next/previous usually finds them ready.
- Fetching: an image whose bytes are not on this machine (a team keeping its images in the server,
  the image not yet cached) is fetched and decoded on a `TaskRunner`: `fetching` says so at once, the
  window stays usable, `image_opened` follows when it arrives, `fetch_failed` if it cannot. Opening
  another image meanwhile abandons the fetch, so a late result is dropped, never shown.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, NamedTuple

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.document import UNLABELED, MaskDocument
from segstudio.core.errors import SegStudioError
from segstudio.core.history import Box, HistoryStore
from segstudio.core.logs import log_exception
from segstudio.core.project import ImageRecord, Prediction, Project, Status
from segstudio.gui.background_tasks import JobQueue, TaskRunner, TaskState

__all__ = ["EditorSession", "ImageCache"]


class Labels(NamedTuple):
    """What an image shows besides its photo: the saved mask and the stored prediction."""

    mask: np.ndarray | None
    prediction: Prediction | None


class ImageCache:
    """Decoded images (least recently used dropped) and, for prefetched neighbours, their labels.

    Prefetched labels are used once and only while still current: every write of an image's mask
    or prediction bumps its version (when queued and when done), and a prefetch that started
    before a bump is thrown away.
    """

    def __init__(self, project: Project, capacity: int = 6) -> None:
        self.project = project
        self.capacity = capacity
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._labels: dict[str, tuple[int, Labels]] = {}
        self._versions: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._jobs = JobQueue(name="segstudio-prefetch")
        self._inflight: dict[str, Future] = {}

    def is_decoded(self, rel_path: str) -> bool:
        """In memory already (one being prefetched may still wait on the network: not yet)."""
        with self._lock:
            return rel_path in self._images

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
            except Exception:
                pass
        image = self.project.load_image(rec)
        self._put(rec.rel_path, image)
        return image

    def take_labels(self, rec: ImageRecord) -> Labels:
        """The mask and prediction of `rec`: prefetched if still current, else read now."""
        with self._lock:
            entry = self._labels.pop(rec.rel_path, None)
            current = self._versions[rec.rel_path]
        if entry is not None and entry[0] == current:
            return entry[1]
        return Labels(self.project.load_mask(rec), self.project.load_prediction(rec))

    def invalidate_labels(self, rel_path: str) -> None:
        """The stored mask or prediction of `rel_path` is changing: prefetched copies are stale."""
        with self._lock:
            self._versions[rel_path] += 1
            self._labels.pop(rel_path, None)

    def forget(self, rel_paths: Iterable[str]) -> None:
        """These paths now hold other pixels or labels (changed, renamed or removed on disk)."""
        with self._lock:
            for rel_path in rel_paths:
                self._images.pop(rel_path, None)
                self._labels.pop(rel_path, None)
                self._versions[rel_path] += 1

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
                if rec.rel_path in self._inflight or (
                    rec.rel_path in self._images and rec.rel_path in self._labels
                ):
                    continue
                self._inflight[rec.rel_path] = self._jobs.submit(
                    lambda state, r=rec: self._load(r), key=rec.rel_path
                )

    def _load(self, rec: ImageRecord) -> np.ndarray:
        try:
            with self._lock:
                version = self._versions[rec.rel_path]
                image = self._images.get(rec.rel_path)
            if image is None:
                image = self.project.load_image(rec)
                self._put(rec.rel_path, image)
            labels = Labels(self.project.load_mask(rec), self.project.load_prediction(rec))
            with self._lock:
                if self._versions[rec.rel_path] == version:
                    self._labels[rec.rel_path] = (version, labels)
            return image
        finally:
            with self._lock:
                self._inflight.pop(rec.rel_path, None)

    def shutdown(self) -> None:
        self._jobs.stop(wait=True)


class EditorSession(QObject):
    """Open image + document + saving. Signals are emitted on the GUI thread."""

    image_opened = Signal(object, object, object)  # ImageRecord, image ndarray | None, MaskDocument | None
    record_changed = Signal(object)  # ImageRecord (status / confidence changed)
    prediction_changed = Signal()  # the current document's prediction layer changed
    error = Signal(str)
    image_problem = Signal(str, str)  # rel_path, reason: one image cannot be used (no decision needed)
    fetching = Signal(object)  # ImageRecord: being fetched from the team server, `image_opened` follows
    fetch_failed = Signal(object, str)  # ImageRecord, message: the fetch of the open image failed

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
        self._writer = JobQueue(self, name="segstudio-writer")
        self._writer.done.connect(self._on_written)
        self._writer.failed.connect(self._on_write_failed)
        self._writes: Counter[str] = Counter()  # rel_path -> writes queued or running
        self._writes_lock = threading.Lock()
        self._write_ids = itertools.count()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(autosave_ms)
        self._timer.timeout.connect(self.save)
        self.neighbours: Callable[[str], list[str]] | None = None  # for prefetching
        self._fetch = TaskRunner(self, name="segstudio-fetch-image")
        self._fetch.failed.connect(self._on_fetch_failed)
        self.fetching_record: ImageRecord | None = None  # the image being fetched (None: none)

    # -- opening -------------------------------------------------------------------------------------
    def open_image(self, rel_path: str) -> bool:
        """Save the current image and open `rel_path`; False (and `error`) if it is not in the project."""
        rec = self.project.get(rel_path)
        if rec is None:
            self.image_problem.emit(rel_path, "it is no longer in the folder (moved or deleted)")
            return False
        if self.fetching_record is not None and self.fetching_record.rel_path == rel_path:
            return True  # asked again while it is on its way: the fetch under way shows it
        self._fetch.abandon()  # a fetch of another image: its late result is dropped
        self.fetching_record = None
        self._queue_current()
        if self._writes_pending(rel_path):  # its own mask is still being written: read what was saved
            self._writer.wait_idle(60)
        if self.document is not None:
            self.document.remove_listener(self._on_doc_changed)
        self.record, self.image, self.document = rec, None, None
        if rec.error or rec.shape is None:
            self.image_opened.emit(rec, None, None)
            return True
        if not self.cache.is_decoded(rel_path) and self.project.needs_fetch(rec):
            self.fetching_record = rec
            self.fetching.emit(rec)
            self._fetch.start(
                lambda state, r=rec: (self.cache.get(r), self.cache.take_labels(r)),
                on_done=lambda result, r=rec: self._on_fetched(r, *result),
            )
            return True
        try:
            image = self.cache.get(rec)
            mask, prediction = self.cache.take_labels(rec)
        except SegStudioError as exc:
            self._open_failed(rec, str(exc))
            return True
        self._show(rec, image, Labels(mask, prediction))
        return True

    def _open_failed(self, rec: ImageRecord, reason: str) -> None:
        fresh = self.project.get(rec.rel_path)  # a decode failure was recorded: badge and counters follow
        if fresh is not None and fresh.error != rec.error:
            rec = self.record = fresh
            self.record_changed.emit(fresh)
        self.image_problem.emit(rec.rel_path, reason)
        self.image_opened.emit(rec, None, None)

    def _on_fetched(self, rec: ImageRecord, image: np.ndarray, labels: Labels) -> None:
        """The fetch of the image still wanted arrived (a superseded one never gets here)."""
        self.fetching_record = None
        self._show(rec, image, labels)

    def _on_fetch_failed(self, message: str) -> None:
        rec, self.fetching_record = self.fetching_record, None
        if rec is None:
            return
        fresh = self.project.get(rec.rel_path)
        if fresh is not None and fresh.error:  # fetched, but the bytes do not decode: an unreadable image
            self._open_failed(rec, message)
            return
        self.fetch_failed.emit(rec, message)

    @property
    def fetching_image(self) -> bool:
        """The open image is still on its way from the team server (nothing to edit yet)."""
        return self.fetching_record is not None

    def _show(self, rec: ImageRecord, image: np.ndarray, labels: Labels) -> None:
        """Make the document of `rec` (its saved mask, else its prediction, else unlabelled) and show it."""
        rel_path = rec.rel_path
        mask, prediction = labels
        self._had_mask = mask is not None
        if mask is None:
            mask = (
                prediction.labels.copy()
                if prediction is not None
                else np.full(rec.shape, UNLABELED, np.uint8)
            )
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

    def close_image(self) -> None:
        """Forget the open image without saving (its file left the folder; saved strokes stay stored)."""
        self._timer.stop()
        self._fetch.abandon()
        self.fetching_record = None
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
        if rec.status != Status.DONE and _all_undone(doc):
            # Every edit was undone: no mask, and the image returns to predicted / new.
            doc.mark_saved()
            self._had_mask = False
            status = Status.PREDICTED if doc.prediction is not None else Status.NEW
            self.record = shown = _with_status(rec, status)
            self.record_changed.emit(shown)
            self._submit(rec.rel_path, lambda: self.project.delete_mask(rec))
            return
        labels = doc.labels.copy()
        doc.mark_saved()
        self._had_mask = True
        status = Status.DONE if rec.status == Status.DONE else Status.IN_PROGRESS
        if rec.status != status:
            self.record = rec = _with_status(rec, status)  # shown at once; the writer confirms
            self.record_changed.emit(rec)
        self._submit(rec.rel_path, lambda: self.project.save_mask(rec, labels, status))

    def _submit(self, rel_path: str, job: Callable[[], Any]) -> None:
        """Queue a write of `rel_path`'s stored state on the writer (in order with every other write)."""
        with self._writes_lock:
            self._writes[rel_path] += 1
        self.cache.invalidate_labels(rel_path)

        def run(state: TaskState) -> Any:
            try:
                return job()
            except (
                SegStudioError
            ) as exc:  # disk full, image gone...: logged here; bugs are logged by gui.background_tasks
                log_exception("save", exc)
                raise
            finally:
                self.cache.invalidate_labels(rel_path)
                with self._writes_lock:
                    self._writes[rel_path] -= 1

        self._writer.submit(run, key=(rel_path, next(self._write_ids)))

    def _writes_pending(self, rel_path: str) -> bool:
        with self._writes_lock:
            return self._writes[rel_path] > 0

    def _queue_current(self) -> None:
        """Close a stroke in progress and queue the current mask's save (no waiting)."""
        if self.document is not None and self.document.in_stroke:
            self.document.end_stroke()
        self.save()

    def flush(self) -> None:
        """Save now and wait for every queued write (Save, close)."""
        self._queue_current()
        self._writer.wait_idle(60)

    def _on_written(self, key: tuple[str, int], result: Any) -> None:
        rel_path = key[0]
        if not isinstance(result, ImageRecord) or self._writes_pending(rel_path):
            return  # a later write of this image will report the newer state
        if self.record is not None and rel_path == self.record.rel_path:
            self.record = result
        self.record_changed.emit(result)

    def _on_write_failed(self, key: tuple[str, int], message: str) -> None:
        """Say so (the edit stays in memory), and show the state that is really stored."""
        rel_path = key[0]
        self.error.emit(f"saving {rel_path} failed: {message}")
        stored = self.project.get(rel_path)
        if stored is None:
            return
        if self.record is not None and rel_path == self.record.rel_path:
            self.record = stored
        self.record_changed.emit(stored)

    # -- status ----------------------------------------------------------------------------------------
    def set_status(self, status: Status) -> ImageRecord | None:
        """Mark the current image (saving its mask first; `done` always writes the mask)."""
        rec, doc = self.record, self.document
        if rec is None or self.fetching_image:  # not shown yet: nothing was seen to mark
            return None
        self._queue_current()
        target = self.record or rec
        if doc is not None and status == Status.DONE:
            labels = doc.labels.copy()
            doc.mark_saved()
            self._had_mask = True
            self._submit(target.rel_path, lambda: self.project.save_mask(target, labels, Status.DONE))
        else:
            self._submit(target.rel_path, lambda: self.project.set_status(target, status))
        self.record = shown = _with_status(target, status)  # shown at once; the writer confirms
        self.record_changed.emit(shown)
        return shown

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
        self.cache.invalidate_labels(rel_path)  # the worker may have stored it already
        rec = self.project.get(rel_path)
        if rec is None:
            return
        if not self.project.has_prediction(rec) or rec.status == Status.NEW:
            # The worker did not store it: keep it in the project so it survives a restart.
            version = self.model_version or getattr(result, "model_version", None) or "unknown"
            conf = confidence if confidence is not None else np.full(labels.shape, 255, np.uint8)
            self._submit(rel_path, lambda: self.project.save_prediction(rec, labels, conf, version, raw))
        else:
            self.record_changed.emit(rec)
        doc = self.document
        if (
            doc is None
            or self.record is None
            or self.record.rel_path != rel_path
            or labels.shape != doc.shape
        ):
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
        self._fetch.abandon()
        self.fetching_record = None
        self.flush()
        self._writer.stop(wait=True)
        self.cache.shutdown()


def _all_undone(doc: MaskDocument) -> bool:
    """No undo step left and the labels are what an unedited image shows (the prediction, or unlabeled)."""
    if doc.history.undo_count:
        return False
    if doc.prediction is not None:
        return bool(np.array_equal(doc.labels, doc.prediction))
    return bool((doc.labels == UNLABELED).all())


def _with_status(rec: ImageRecord, status: Status) -> ImageRecord:
    from dataclasses import replace

    return replace(rec, status=status)
