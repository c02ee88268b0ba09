"""Background work for the GUI: one small helper, in the spirit of Orange3's `ConcurrentMixin`.

Work is an ordinary function `fn(state) -> result` that runs on a worker thread and receives a
`TaskState` (a `core.task_handle.TaskHandle`: `set_status`, `set_progress`, `check_cancelled`). Its
outcome reaches the GUI thread as exactly one queued signal: `done(result)`, `failed(message)` or
`cancelled()`, then `finished()`. Qt objects are never touched from the worker.

Two shapes, sharing that contract:

- `TaskRunner`: one task at a time, the latest wins. `start()` cancels the previous task and
  everything it still reports (progress, result) is dropped as stale; a stale result can be
  disposed of (`discard=`, e.g. closing a project that finished opening too late). For dialogs
  (export, import), opening a project, loading the image the user switched to.
- `JobQueue`: jobs run one after the other on one thread, none is cancelled by the next. For
  ordered writes (mask saves, status changes) and for work lists (thumbnails, prefetch) where
  `lifo=True` serves the newest request first. `submit()` returns a `concurrent.futures.Future`
  so a caller that needs a result now can wait for it.

The long-lived inference worker stays a QThread of its own: it keeps a model loaded between
requests, which is a different job from running a function once.

How to add background work: write the function over plain data (no widgets) taking `state`,
call `state.check_cancelled()` between units of work, then `runner.start(fn)` and connect
`done`/`failed`/`cancelled` to slots that update the widgets.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, NamedTuple

from PySide6.QtCore import QObject, Qt, Signal

from segstudio.core.errors import CancelledError, SegStudioError
from segstudio.core.logs import log_exception
from segstudio.core.task_handle import NullTask

__all__ = ["JobQueue", "TaskRunner", "TaskState", "error_message"]


def error_message(error: BaseException) -> str:
    """What the user sees: our typed errors say what to do; anything else is a bug, named as such."""
    if isinstance(error, SegStudioError):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}"


class TaskState(NullTask):
    """The handle a task function receives (a `core.task_handle.TaskHandle`; the cancel flag is NullTask's).

    Thread-safe: status and progress go to the runner, which forwards them as queued signals.
    """

    def __init__(
        self, report: Callable[[str, Any], None] | None = None, on_cancel: Callable[[], None] | None = None
    ) -> None:
        super().__init__()
        self._report = report or (lambda kind, payload: None)
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        super().cancel()
        if self._on_cancel is not None:
            self._on_cancel()

    def set_status(self, message: str) -> None:
        self._report("status", str(message))

    def set_progress(self, done: int, total: int) -> None:
        self._report("progress", (int(done), int(total)))


class _Outcome(NamedTuple):
    kind: str  # "done", "failed" or "cancelled"
    value: Any  # the result, or the user-facing message of a failure
    error: BaseException | None = None


def _outcome(fn: Callable[[TaskState], Any], state: TaskState) -> _Outcome:
    """Run `fn` and name its ending. Work that finished although asked to stop counts as done."""
    try:
        return _Outcome("done", fn(state))
    except CancelledError as error:
        return _Outcome("cancelled", None, error)
    except Exception as error:
        if not isinstance(error, SegStudioError):
            log_exception("task", error)
        return _Outcome("failed", error_message(error), error)


def _emit(signal: Any, *args: Any) -> None:
    """Report from a worker thread; nothing to do when the runner was deleted meanwhile (its window
    closed while the task ran), instead of an exception that ends the thread noisily."""
    try:
        signal.emit(*args)
    except RuntimeError:
        pass


class TaskRunner(QObject):
    """Runs one function at a time off the GUI thread; the latest `start()` wins (see module docstring)."""

    progress = Signal(int, int)
    status = Signal(str)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()  # after done / failed / cancelled of the current task
    _report = Signal(int, str, object)  # worker thread -> GUI thread: generation, kind, payload

    def __init__(self, parent: QObject | None = None, name: str = "segstudio-task") -> None:
        super().__init__(parent)
        self._name = name
        self._generation = 0
        self._state: TaskState | None = None
        self._thread: threading.Thread | None = None
        self._discards: dict[int, Callable[[Any], None]] = {}
        self._on_done: Callable[[Any], None] | None = None
        # queued even when reported from the GUI thread (an adopted future that is already done):
        # outcomes always arrive after start()/adopt() has returned, as Orange3's mixin promises
        self._report.connect(self._on_report, Qt.ConnectionType.QueuedConnection)

    def start(
        self,
        fn: Callable[[TaskState], Any],
        on_done: Callable[[Any], None] | None = None,
        discard: Callable[[Any], None] | None = None,
    ) -> TaskState:
        """Cancel the current task (its outcome is dropped) and run `fn(state)` on a new thread.

        `on_done(result)` runs on the GUI thread for this task only (before `done` is emitted).
        `discard(result)` runs instead if the result arrives after the task was superseded or
        abandoned, for results that hold resources (an open project).
        """
        self.abandon()
        self._generation += 1
        generation = self._generation
        self._on_done = on_done
        if discard is not None:
            self._discards[generation] = discard
        state = TaskState(lambda kind, payload: _emit(self._report, generation, kind, payload))
        self._state = state

        def run() -> None:
            outcome = _outcome(fn, state)
            _emit(self._report, generation, outcome.kind, outcome.value)

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        return state

    def adopt(
        self,
        future: Future,
        on_cancel: Callable[[], None] | None = None,
        discard: Callable[[Any], None] | None = None,
    ) -> TaskState:
        """Report work already running elsewhere (a `concurrent.futures.Future`) as this runner's task:
        the same queued signals, the same cancel (`on_cancel` asks that work to stop) and `discard`;
        no thread waits for it (the future's own completion reports it)."""
        self.abandon()
        self._generation += 1
        generation = self._generation
        self._on_done = None
        if discard is not None:
            self._discards[generation] = discard
        state = TaskState(lambda kind, payload: _emit(self._report, generation, kind, payload), on_cancel)
        self._state, self._thread = state, None

        def report(done: Future) -> None:
            outcome = _outcome(lambda _state: done.result(), state)
            _emit(self._report, generation, outcome.kind, outcome.value)

        future.add_done_callback(report)
        return state

    def is_running(self) -> bool:
        """A task was started and its outcome has not been reported yet."""
        return self._state is not None

    def cancel(self) -> None:
        """Ask the current task to stop; it still reports (normally `cancelled`)."""
        if self._state is not None:
            self._state.cancel()

    def abandon(self) -> None:
        """Ask the current task to stop and drop everything it reports from now on."""
        if self._state is not None:
            self._state.cancel()
        self._state = None
        self._generation += 1

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current thread ends (dialog close); True if it did."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _on_report(self, generation: int, kind: str, payload: Any) -> None:
        if generation != self._generation:  # stale: superseded or abandoned
            discard = self._discards.pop(generation, None)
            if kind == "done" and payload is not None and discard is not None:
                discard(payload)
            return
        if kind == "progress":
            self.progress.emit(*payload)
        elif kind == "status":
            self.status.emit(payload)
        else:
            self._state = None
            self._discards.pop(generation, None)
            on_done, self._on_done = self._on_done, None
            if kind == "done":
                if on_done is not None:
                    on_done(payload)
                self.done.emit(payload)
            elif kind == "failed":
                self.failed.emit(payload)
            else:
                self.cancelled.emit()
            self.finished.emit()


class JobQueue(QObject):
    """Jobs `fn(state)` run one at a time, in order (or newest first), on one daemon thread.

    Each job's outcome is a queued `done(key, result)` / `failed(key, message)` signal; a cancelled
    job (`clear_pending()` or `stop()`) reports nothing. `submit()` returns a Future as well.
    """

    done = Signal(object, object)  # key, result
    failed = Signal(object, str)  # key, message
    _report = Signal(object, str, object)

    def __init__(
        self, parent: QObject | None = None, name: str = "segstudio-jobs", lifo: bool = False
    ) -> None:
        super().__init__(parent)
        self._name = name
        self._lifo = lifo
        self._pending: collections.OrderedDict[Hashable, tuple[Callable[[TaskState], Any], Future]] = (
            collections.OrderedDict()
        )
        self._cond = threading.Condition()
        self._current: TaskState | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        # queued even when reported from the GUI thread (an adopted future that is already done):
        # outcomes always arrive after start()/adopt() has returned, as Orange3's mixin promises
        self._report.connect(self._on_report, Qt.ConnectionType.QueuedConnection)

    def submit(self, fn: Callable[[TaskState], Any], key: Hashable | None = None) -> Future:
        """Queue `fn`; a pending job with the same `key` is replaced (its Future is cancelled)."""
        future: Future = Future()
        key = key if key is not None else object()
        with self._cond:
            if self._stopped:
                future.cancel()
                return future
            replaced = self._pending.pop(key, None)
            if replaced is not None:
                replaced[1].cancel()
            self._pending[key] = (fn, future)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return future

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return len(self._pending) + (self._current is not None)

    def clear_pending(self) -> None:
        """Drop the queued jobs (the running one finishes)."""
        with self._cond:
            for _, future in self._pending.values():
                future.cancel()
            self._pending.clear()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued job has run; True if so within `timeout`."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and self._current is None, timeout)

    def stop(self, wait: bool = True, timeout: float = 5.0) -> None:
        """Drop queued jobs, cancel the running one, and end the thread."""
        with self._cond:
            self._stopped = True
            if self._current is not None:
                self._current.cancel()
            self._cond.notify_all()
        self.clear_pending()
        if wait and self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                key, (fn, future) = self._pending.popitem(last=self._lifo)
                if not future.set_running_or_notify_cancel():
                    continue
                state = self._current = TaskState()
            outcome = _outcome(fn, state)
            if outcome.error is None:
                future.set_result(outcome.value)
            else:
                future.set_exception(outcome.error)
            if outcome.kind != "cancelled":
                _emit(self._report, key, outcome.kind, outcome.value)
            with self._cond:
                self._current = None
                self._cond.notify_all()

    def _on_report(self, key: Any, kind: str, payload: Any) -> None:
        if kind == "done":
            self.done.emit(key, payload)
        else:
            self.failed.emit(key, payload)
