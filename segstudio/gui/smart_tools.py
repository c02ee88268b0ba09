"""Smart click, box, scribble, magic wand and superpixel brush in the editor (a thin layer).

The segmentation itself is `segstudio.core.interactive` (pure functions the benchmark robot also
drives); this module only turns canvas events into calls and the results into document edits:
- an object being clicked is previewed inside one open document stroke (each update restores the
  stroke's pixels and writes the new region), so accepting it (Enter, another class, another tool)
  records exactly one undo step and Escape restores the mask;
- the per-image precomputation (SLIC superpixels, the engine's state) runs on a worker thread when
  an image opens; until it is ready a click only shows "preparing…" and painting never waits.
- each click's engine work (the region for the prompts so far) runs on the click worker, one thread
  per editing session, in order (gui/click_queue.py); the result is applied here, on the GUI thread,
  only to the object and image it was computed for. Clicks made meanwhile queue and are folded into
  the next request; Enter and Backspace wait their turn; another image, tool or engine drops them.
- SAM is the exception: its image embedding is a background job of the long-lived inference worker
  (this image first, then the next ones; `embedding_wanted` asks the window to queue them), and this
  side only attaches the cached embedding (`embedding_arrived`) and runs the prompt decoder per click.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar, QWidget

from segstudio.core.document import MaskDocument
from segstudio.core.errors import SegStudioError, UsageError
from segstudio.core.interactive.prompts import Point, Prompts
from segstudio.core.interactive.wand import magic_wand, tolerance_from_drag
from segstudio.gui.background_tasks import JobQueue, TaskRunner, TaskState
from segstudio.gui.click_queue import PROMPT_KINDS, ClickOp, ClickRequest, add_prompt

if TYPE_CHECKING:
    from segstudio.core.interactive.click_session import ClickSession
    from segstudio.core.interactive.engines import Engine

__all__ = ["GUI_ENGINES", "SMART_READY", "SmartOptions", "SmartTools"]

# Offline engines ("crf" needs the image's stored model probabilities), plus "sam" once a checkpoint is loaded
# and "learned" while the project's active model version carries a click model (docs/click-model.md).
GUI_ENGINES = ("superpixel", "grabcut", "crf", "sam", "learned")
SMART_READY = "smart tools ready"  # routine news after each image opens (the window may hold it back)
BOX_MIN = 2  # image pixels: a press-release closer than this in both directions is a click, not a box
#: the active version's click model file (`set_click_model`); "learned" is registered from it on the worker
_click_model: Path | None = None


def click_model() -> Path | None:
    """The click model the ``learned`` engine uses now (None: the engine is not offered)."""
    return _click_model


LAZY_ENGINES = ("crf",)  # registered on first use (its module lives in ml/)
BUILTIN_ENGINES = ("superpixel", "grabcut")  # registered by core.interactive.engines on import


def registered_engines() -> set[str]:
    """Engine names registered now, without importing `core.interactive.engines` when it is not loaded yet
    (importing it puts scikit-image and SciPy, ~1 s, on the path to the window's first paint)."""
    engines = _imported_engines()
    return set(engines.ENGINES) if engines is not None else set(BUILTIN_ENGINES)


ENGINES_MODULE = "segstudio.core.interactive.engines"
#: `core.interactive.engines` once its import has *finished* (a module half-way through its import on
#: the worker is already in sys.modules: the GUI thread must not read it then)
_loaded: ModuleType | None = None
_import_lock = threading.Lock()


def _imported_engines() -> ModuleType | None:
    """The engines module if some thread has finished importing it (ours, or SAM's loader), else None."""
    module = _loaded or sys.modules.get(ENGINES_MODULE)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


def _engines() -> ModuleType:
    """`core.interactive.engines` (scikit-image, SciPy, ~1 s of imports): the first call happens on the
    smart tools' worker thread, so the window keeps handling events meanwhile (bench/startup.py,
    post_paint_stall). One thread at a time (two images' preparations can overlap): scikit-image's
    lazy loader is not safe to race."""
    global _loaded
    if _loaded is None:
        module = _imported_engines()  # already imported elsewhere (SAM's loader): no lock to wait for
        if module is None:
            with _import_lock:
                from segstudio.core.interactive import engines as module
        _loaded = module
    return _loaded


def _prepared_engine(
    name: str, image: np.ndarray, probabilities: Callable[[], np.ndarray | None] | None
) -> Engine:
    """Worker thread: one engine with its per-image precomputation."""
    probs = None
    if name == "crf":
        import segstudio.ml.interactive_crf  # noqa: F401  (registers "crf"; no torch)

        probs = probabilities() if probabilities is not None else None
        if probs is None:
            raise UsageError(
                "the crf engine needs this image's prediction with its stored class "
                "probabilities: predict the image first (Ctrl+P)"
            )
    if name == "learned":
        path = _click_model
        if path is None:
            raise UsageError("the learned engine needs a click model: fine-tune with the click model ticked")
        from segstudio.ml.click_engine import use_click_model  # no torch here: prepare() loads it

        use_click_model(path)
    engine = _engines().create_engine(name)
    engine.prepare(image, probs)
    from segstudio.core.interactive.extent import warm_up

    warm_up(engine)  # the click-extent limit's edge map, here rather than on the first click
    return engine


def stored_probabilities(project, record) -> np.ndarray | None:
    """The image's class probabilities kept with its prediction (reduced size), or None."""
    from segstudio.core.probabilities import load_probabilities

    stored = load_probabilities(project, record.id, record.shape)
    return None if stored is None else stored.probabilities


class SmartTools(QObject):
    """Per-image engines + the open click session of one document."""

    edited = Signal()  # an accepted result was recorded as one undo step
    busy_changed = Signal(bool)  # a click is computing on the worker (the canvas shows a busy pointer)
    ready = Signal()  # the current image's precomputation finished
    status = Signal(str)
    outline = Signal(list)  # a box or scribble being drawn, image coordinates (empty: none)
    prompts = Signal(list, list)  # the open object's positive and negative clicks (for the markers)
    engines_changed = Signal()  # an engine became available (a SAM checkpoint loaded)
    error = Signal(str)
    sam_loaded = Signal(object)  # ml.sam_engine.SamRuntime: the window hands it to the inference worker
    embedding_wanted = Signal(str)  # SAM: queue embeddings for this image (rel_path) and the next ones

    def __init__(self, state, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.document: MaskDocument | None = None
        self.image: np.ndarray | None = None
        self.engines: dict[str, Engine] = {}
        self.session: ClickSession | None = None
        self._generation = 0
        #: the widget that shows the image (the window sets the canvas viewport): the first image's
        #: preparation (whose worker imports the engines, ~1 s) waits for its next paint, so the photo
        #: is on screen before that import competes with it for the GIL
        self.paint_gate: QWidget | None = None
        self._after_paint: Callable[[], None] | None = None
        # The team's task helper (gui/background_tasks.py): starting the next image's preparation drops the
        # previous one's outcome; results arrive on the GUI thread as queued signals.
        self._prep = TaskRunner(self, "smart-tools")
        self._prep.failed.connect(lambda msg: self.status.emit(f"smart tools unavailable: {msg}"))
        self._sam_loader = TaskRunner(self, "sam-checkpoint")
        self._sam_loader.failed.connect(self.error)
        self._drag: list[Point] = []
        self._drag_positive = True  # the box press was a left click (Shift: negative)
        self._wand: tuple[float, float, float] | None = None  # (x, y, starting tolerance)
        #: seconds from each press to its mask shown (the latest 100; queued presses include the wait)
        self.latencies: deque[float] = deque(maxlen=100)
        self.compute_seconds: deque[float] = deque(maxlen=100)  # the engine's own time per request
        #: returns the open image's stored class probabilities (C, h, w) or None; set by the window,
        #: called on the worker thread; the "crf" engine needs them
        self.probabilities_source: Callable[[], np.ndarray | None] | None = None
        #: the open image's project record (set by the window): names its SAM embedding
        self.record: Any = None
        self.sam: Any = None  # ml.sam_engine.SamRuntime once a checkpoint is loaded
        #: a SAM click made before the embedding arrived: (x, y, positive, class), applied on arrival
        self._pending: tuple[float, float, bool, int] | None = None
        # The click worker (one thread for this editing session): engines' per-click work, in order;
        # see gui/click_queue.py for why the ops queue lives here.
        self._worker = self._click_worker()
        self._ops: deque[ClickOp] = deque()
        self._inflight: ClickRequest | None = None
        self._token = 0
        self._prompts = Prompts()  # the open object's prompts as the user gave them (GUI thread)
        self._shown = Prompts()  # ...as the mask shows them now
        self._busy_shown = False
        #: run the engine on the GUI thread instead (the "before" reference of bench/click_gaps.py only)
        self.synchronous = False

    # -- image lifecycle ----------------------------------------------------------------------------
    def set_document(self, document: MaskDocument | None, image: np.ndarray | None = None) -> None:
        self.settle()  # a result still computing belongs to the previous image: it is dropped
        self.document, self.image = document, image
        self.engines = {}
        self._generation += 1
        if document is not None and image is not None:
            # The first image's preparation imports the engines' libraries (~1 s, on the worker): it
            # starts once the image has been painted, so the photo is not kept waiting for the GIL.
            self._after_first_paint(lambda g=self._generation: self._prepare_later(image, g))
        else:
            self._prep.abandon()

    def _after_first_paint(self, fn: Callable[[], None]) -> None:
        gate = self.paint_gate
        if gate is None or not gate.isVisible() or _imported_engines() is not None:
            QTimer.singleShot(0, fn)
            return
        if self._after_paint is None:
            gate.installEventFilter(self)
            QTimer.singleShot(1000, self._release_after_paint)  # no paint (window covered): go anyway
        self._after_paint = fn  # a newer image replaces the pending one

    def _release_after_paint(self) -> None:
        fn, self._after_paint = self._after_paint, None
        if fn is not None:
            if self.paint_gate is not None:
                self.paint_gate.removeEventFilter(self)
            QTimer.singleShot(0, fn)  # after the paint that let it go

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and watched is self.paint_gate:
            self._release_after_paint()
        return False

    def _prepare_later(self, image: np.ndarray, generation: int) -> None:
        if generation == self._generation:  # still the same image
            self._prepare(image, generation)

    def _prepare(self, image: np.ndarray, generation: int) -> None:
        if self.sam is not None:
            self._want_sam()
        names = sorted({self.state.engine, "superpixel"} - set(self.engines) - {"sam"})
        if not names:
            return
        source = self.probabilities_source

        def work(state: TaskState) -> tuple[dict[str, Engine], list[str]]:
            out, problems = {}, []
            for name in names:  # each on its own: one engine that cannot work leaves the others usable
                state.check_cancelled()
                try:
                    out[name] = _prepared_engine(name, image, source)
                except SegStudioError as error:
                    problems.append(str(error))
            return out, problems

        self._prep.start(work, on_done=lambda result, g=generation: self._prepared(*result, g))

    def set_click_model(self, path: Path | None) -> None:
        """The project's active version changed: offer ``learned`` with its click model (or not at all)."""
        global _click_model
        if path == _click_model:
            return
        _click_model = path
        self.engines.pop("learned", None)  # prepared with the previous model
        self.engines_changed.emit()
        if path is None and self.state.engine == "learned":
            self.state.engine = "superpixel"
            self.engine_changed()

    def load_sam(self, path: str) -> None:
        """Load a SAM checkpoint on a worker thread; then "sam" is an engine choice and selected."""
        self.status.emit("loading the SAM checkpoint…")

        def work(state: TaskState) -> Any:
            from segstudio.ml.sam_engine import use_sam_checkpoint

            return use_sam_checkpoint(path)

        self._sam_loader.start(work, on_done=self._sam_loaded)

    def _sam_loaded(self, runtime: Any) -> None:
        self.sam = runtime
        self.engines.pop("sam", None)
        self.engines_changed.emit()
        self.sam_loaded.emit(runtime)  # the inference worker computes its embeddings from now on
        self.state.engine = "sam"
        self.engine_changed()

    def _sam_key(self) -> tuple[str, str] | None:
        from segstudio.ml.sam_cache import embedding_key  # only once SAM is loaded: ml stays off start-up

        rec = self.record
        return None if rec is None else embedding_key(rec.rel_path, rec.content_hash)

    def _want_sam(self) -> None:
        """Ask for this image's embedding (and the next images'), then use it if it is cached already."""
        if self.record is None or self.image is None:
            return
        self.embedding_wanted.emit(self.record.rel_path)
        key = self._sam_key()
        if self.state.engine == "sam" and key is not None:
            self.embedding_arrived(self.record.rel_path, key)

    def embedding_arrived(self, rel_path: str, key: object) -> None:
        """The inference worker cached an embedding: the open image's makes ``sam`` usable (no encoder here)."""
        if self.sam is None or self.image is None or "sam" in self.engines or key != self._sam_key():
            return
        embedding = self.sam.cache.get(key)
        if embedding is None:
            return
        engine = _engines().create_engine("sam")
        engine.attach(self.image, embedding)
        self.engines["sam"] = engine
        self.status.emit(f"{SMART_READY} (SAM)")
        self.ready.emit()
        self._click_waiting()

    def _click_waiting(self) -> None:
        """The click made while the engine was being prepared, now that it is ready (same class). Kept
        while the current engine is not ready yet: the other engines' preparation can finish first
        (under load, while SAM's embedding still computes), and that must not drop the click."""
        if self._pending is None or not self.is_ready:
            return
        pending, self._pending = self._pending, None
        if pending[3] == self.state.active_class:
            self.click(*pending[:3])

    def _prepared(self, engines: dict[str, Engine], problems: list[str], generation: int) -> None:
        if generation != self._generation:
            return  # an older image's result
        self.engines.update(engines)
        self.status.emit("; ".join(problems) if problems else SMART_READY)
        self.ready.emit()
        self._click_waiting()

    def engine_changed(self) -> None:
        """The engine picked in the options bar; prepared now if this image has not got it yet."""
        self.settle()
        if self.image is not None and self.state.engine not in self.engines:
            self._prepare(self.image, self._generation)

    def _engine(self, name: str | None = None) -> Engine | None:
        name = name or self.state.engine
        engine = self.engines.get(name)
        if engine is None:
            what = " (SAM image embedding)" if name == "sam" else ""
            self.status.emit(f"preparing the smart tools for this image{what}…")
        return engine

    @property
    def is_ready(self) -> bool:
        return self.state.engine in self.engines

    # -- click session: the engine works on the click worker, results are applied here ---------------
    @property
    def busy(self) -> bool:
        """A click (box, scribble, Backspace, Enter) is waiting for or computing on the click worker."""
        return self._inflight is not None or bool(self._ops)

    def _enqueue(self, op: ClickOp) -> None:
        self._ops.append(op)
        self._drain()

    def _drain(self) -> None:
        """Run queued ops until one needs the worker (GUI thread; never waits)."""
        while self._ops and self._inflight is None:
            op = self._ops.popleft()
            if op.kind == "accept":
                self._accept_now()
                continue
            if op.kind == "undo" and (self.session is None or self.session.active_class != op.active_class):
                continue  # nothing open to drop a click from
            session = self._session(op.active_class)
            if session is None:
                continue
            batch = [op]
            add_prompt(self._prompts, op)
            # queued prompts for the same object supersede the lists in between: one request for all
            while (
                self._ops
                and self._ops[0].kind in PROMPT_KINDS
                and self._ops[0].active_class == op.active_class
            ):
                batch.append(self._ops.popleft())
                add_prompt(self._prompts, batch[-1])
            self._send(session, batch)
        self._set_busy(self.busy)

    def _send(self, session: ClickSession, batch: list[ClickOp]) -> None:
        self._token += 1
        request = ClickRequest(self._token, session, self.document, batch, self._prompts.copy())
        self._inflight = request
        self._set_busy(True)
        prompts = request.prompts.copy()  # the worker's own: the GUI keeps changing its copy

        def work(state: TaskState) -> np.ndarray:  # the click worker's thread
            return session.update_to(prompts)

        if self.synchronous:  # the measured reference only (bench/click_gaps.py): the old GUI-thread path
            try:
                region = work(TaskState())
            except SegStudioError as error:
                self._click_failed(request.token, str(error))
            else:
                self._arrived(request.token, region)
            return
        self._worker.submit(work, key=request.token)

    def _arrived(self, token: object, region: np.ndarray) -> None:
        """GUI thread: a result from the worker; applied only to the object and image it was for."""
        request = self._inflight
        if request is None or token != request.token:
            return  # stale: cancelled, or another image or object since
        self._inflight = None
        doc = self.document
        if self.session is request.session and doc is request.document and doc is not None and doc.in_stroke:
            self._shown = request.prompts
            self._show(region, request)
        elif self.session is request.session:  # its stroke was closed meanwhile (undo): drop the object
            self.session, self._prompts = None, Prompts()
            self.prompts.emit([], [])
        self._drain()

    def _click_failed(self, token: object, message: str) -> None:
        request = self._inflight
        if request is None or token != request.token:
            return
        self._inflight = None
        self._prompts = self._shown.copy()  # the object stays as last shown
        self.status.emit(f"smart click failed: {message}")
        self._drain()

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy_shown:
            self._busy_shown = busy
            self.busy_changed.emit(busy)
            if busy:
                self.status.emit("computing the click…")

    def _drop_pending(self) -> None:
        """Forget queued ops and the request on the worker (its result will be stale)."""
        self._ops.clear()
        self._inflight = None
        self._set_busy(False)

    def _session(self, cls: int) -> ClickSession | None:
        doc = self.document
        if doc is None:
            return None
        if self.session is not None and (self.session.active_class != cls or not doc.in_stroke):
            self._accept_now()
        if self.session is None:
            engine = self._engine()
            if engine is None:
                return None
            doc.begin_stroke("smart click")
            from segstudio.core.interactive.click_session import ClickSession
            from segstudio.core.interactive.evidence import MaskEvidence

            # the same evidence the benchmark robot passes: a click may only take the model's guesses
            # near it (core/interactive/extent.py), not the whole predicted photo
            evidence = MaskEvidence(doc.labels.copy(), doc.shown_prediction, doc.confidence)
            self.session = ClickSession(engine, cls, evidence)
            self._prompts, self._shown = Prompts(), Prompts()
        return self.session

    def _show(self, region: np.ndarray, request: ClickRequest) -> None:
        doc, session = self.document, self.session
        assert doc is not None and session is not None
        now = time.perf_counter()
        self.latencies.extend(now - op.at for op in request.ops)  # press -> mask shown, per press
        self.compute_seconds.append(session.last_seconds)
        doc.cancel_stroke()
        doc.begin_stroke("smart click")
        doc.apply_region(region, session.active_class, self.state.protect())
        shown = request.prompts
        self.prompts.emit(list(shown.positives), list(shown.negatives))
        actions = len(shown.positives) + len(shown.negatives) + len(shown.scribbles) + (shown.box is not None)
        self.status.emit(
            f"{actions} prompt(s), {1000 * session.last_seconds:.0f} ms — Enter accepts, Esc cancels"
        )

    def _can_click(self) -> bool:
        """The current engine is ready for this image (or a queued op will find it so)."""
        return self.document is not None and (self.busy or self._engine() is not None)

    def click(self, x: float, y: float, positive: bool = True) -> None:
        if self._can_click():
            self._enqueue(ClickOp("click", (x, y, positive), self.state.active_class))
        elif self.document is not None and (self.sam is not None or self.state.engine != "sam"):
            # the engine is being prepared for this image: the latest click waits for it (not a queue)
            self._pending = (x, y, positive, self.state.active_class)
            what = (
                "the SAM image embedding" if self.state.engine == "sam" else "the smart tools for this image"
            )
            self.status.emit(f"preparing {what}… your click applies when it is ready")

    def box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if abs(x1 - x0) >= BOX_MIN and abs(y1 - y0) >= BOX_MIN and self._can_click():
            self._enqueue(ClickOp("box", (x0, y0, x1, y1), self.state.active_class))

    def scribble(self, points: list[Point]) -> None:
        if points and self._can_click():
            self._enqueue(ClickOp("scribble", (list(points),), self.state.active_class))

    def undo_prompt(self) -> None:
        """Backspace: drop the open object's latest click (in order after the clicks still computing)."""
        if self.session is not None or self.busy:
            self._enqueue(ClickOp("undo", (), self.state.active_class))

    def _box_open(self) -> bool:
        """The open object (after the queued ops) was started by a box: a click then refines it."""
        for op in reversed(self._ops):
            if op.kind == "accept":
                return False
            if op.kind == "box":
                return True
        return self.session is not None and self._prompts.box is not None

    def accept(self) -> bool:
        """Record the open object as one undo step (Enter, another class): after the clicks still
        computing, in order. True when it was recorded now."""
        if self.busy:
            self._enqueue(ClickOp("accept"))
            return False
        return self._accept_now()

    def shutdown(self, timeout: float = 10.0) -> None:
        """The window closes: end the click worker and the preparation, and wait for them, so no
        thread is left inside an engine's native code (OpenCV, torch) when the process exits."""
        self.settle()
        self._prep.abandon()
        self._sam_loader.abandon()
        self._worker.stop(wait=True, timeout=timeout)
        self._prep.wait(timeout)
        self._sam_loader.wait(timeout)
        self._worker = self._click_worker()  # no thread until a click (a window shown again works)

    def _click_worker(self) -> JobQueue:
        worker = JobQueue(self, "smart-clicks")
        worker.done.connect(self._arrived)
        worker.failed.connect(self._click_failed)
        return worker

    def settle(self) -> bool:
        """Another image, tool or engine: drop the clicks still computing, keep what is shown (one step)."""
        self._drop_pending()
        return self._accept_now()

    def _accept_now(self) -> bool:
        session, self.session = self.session, None
        self._prompts = Prompts()
        self._pending = None  # moving on drops a click still waiting for the SAM embedding
        if session is not None:
            self.prompts.emit([], [])
        if session is None or self.document is None or not self.document.in_stroke:
            return False
        if self.document.end_stroke():
            self.edited.emit()
            return True
        return False

    def cancel(self) -> None:
        self._drop_pending()
        if self.session is not None and self.document is not None:
            self.document.cancel_stroke()
        self.session = None
        self._prompts = Prompts()
        self._pending = None
        self._drag = []
        self.outline.emit([])
        self.prompts.emit([], [])

    # -- press / drag / release for box, scribble, wand, superpixel brush -----------------------------
    def press(self, tool: str, x: float, y: float, positive: bool = True) -> None:
        doc = self.document
        if doc is None:
            return
        if tool == "click":
            self.click(x, y, positive)
        elif tool in ("box", "scribble"):
            self._drag = [(x, y)]
            self._drag_positive = positive
        elif tool == "wand":
            self.settle()
            self._wand = (x, y, self.state.wand_tolerance)
            doc.begin_stroke("magic wand")
            self._wand_update(x)
        elif tool == "superpixel":
            if self._engine("superpixel") is None:
                return
            self.settle()
            doc.begin_stroke("superpixel brush")
            self._drag = [(x, y)]
            self._paint_superpixels([(x, y)])

    def drag(self, tool: str, x: float, y: float) -> None:
        if tool == "box" and self._drag:
            ((x0, y0),) = self._drag[:1]
            self.outline.emit([(x0, y0), (x, y0), (x, y), (x0, y)])
        elif tool == "scribble" and self._drag:
            self._drag.append((x, y))
            self.outline.emit(list(self._drag))
        elif tool == "wand" and self._wand is not None:
            self._wand_update(x)
        elif tool == "superpixel" and self._drag:
            self._paint_superpixels([self._drag[-1], (x, y)])
            self._drag.append((x, y))

    def release(self, tool: str, x: float, y: float) -> None:
        doc = self.document
        points, self._drag = self._drag, []
        self.outline.emit([])
        if tool == "box" and points:
            x0, y0 = points[0]
            if abs(x - x0) < BOX_MIN and abs(y - y0) < BOX_MIN:
                # A click, not a box: after a box it refines the object (left: this, Shift: not this).
                if self._box_open():
                    self.click(x, y, self._drag_positive)
            else:
                self.box(x0, y0, x, y)
        elif tool == "scribble" and points:
            self.scribble([*points, (x, y)])
        elif tool == "wand" and self._wand is not None:
            self.state.wand_tolerance = self._wand_tolerance(x)
            self._wand = None
            if doc is not None and doc.end_stroke():
                self.edited.emit()
        elif tool == "superpixel" and doc is not None and doc.in_stroke and doc.end_stroke():
            self.edited.emit()

    def _wand_tolerance(self, x: float) -> float:
        assert self._wand is not None
        return tolerance_from_drag(x - self._wand[0], self._wand[2])

    def _wand_update(self, x: float) -> None:
        doc = self.document
        if doc is None or self.image is None or self._wand is None:
            return
        t0 = time.perf_counter()
        tolerance = self._wand_tolerance(x)
        region = magic_wand(self.image, self._wand[0], self._wand[1], tolerance)
        doc.cancel_stroke()
        doc.begin_stroke("magic wand")
        doc.apply_region(region, self.state.active_class, self.state.protect())
        self.latencies.append(time.perf_counter() - t0)
        self.status.emit(f"magic wand tolerance {tolerance:.0f} (drag right: more, left: less)")

    def _paint_superpixels(self, points: list[Point]) -> None:
        engine = self.engines.get("superpixel")
        if (
            self.document is None
            or engine is None
            or not isinstance(engine, _engines().SuperpixelEngine)
            or engine.superpixels is None
        ):
            return
        from segstudio.core.interactive.superpixels import superpixel_brush

        region = superpixel_brush(engine.superpixels, points, self.state.radius)
        self.document.apply_region(region, self.state.active_class, self.state.protect(), "superpixel brush")


class SmartOptions(QToolBar):
    """Engine choice for the click/box/scribble tools, bound both ways to the tool state."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__("Smart tool options", parent)
        self.setObjectName("smart_options")
        self.state = state
        self.engine_combo = QComboBox(self)
        self.refresh()
        self.engine_combo.setToolTip("How a click grows into a region (see README: interactive tools)")
        self.addWidget(QLabel(" Engine ", self))
        self.addWidget(self.engine_combo)
        self.engine_combo.currentIndexChanged.connect(
            lambda i: setattr(state, "engine", self.engine_combo.itemData(i))
        )
        state.changed.connect(self.sync)
        self.sync()

    def refresh(self) -> None:
        """List the engines available now (SAM appears once a checkpoint is loaded).

        Does not import the engines' libraries (see `registered_engines`)."""
        registered = registered_engines()
        self.engine_combo.blockSignals(True)
        self.engine_combo.clear()
        for name in GUI_ENGINES:
            if name == "learned":  # offered while the active version has a click model, registered or not
                if click_model() is not None:
                    self.engine_combo.addItem(name, name)
            elif name in registered or name in LAZY_ENGINES:
                self.engine_combo.addItem(name, name)
        self.engine_combo.blockSignals(False)

    def sync(self) -> None:
        self.engine_combo.blockSignals(True)
        self.engine_combo.setCurrentIndex(max(0, self.engine_combo.findData(self.state.engine)))
        self.engine_combo.blockSignals(False)
