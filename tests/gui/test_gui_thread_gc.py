"""Cycles that hold Qt objects are freed on the GUI thread, never on a worker (gui/gui_thread_gc.py)."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject

from segstudio.gui.gui_thread_gc import COLLECTOR_NAME, GuiThreadCollector, install_gui_thread_gc
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings


class _Cycle:
    """A reference cycle holding a Python-owned QObject; records the thread that frees it."""

    freed_on: list[str] = []

    def __init__(self) -> None:
        self.me = self
        self.qt_object = QObject()

    def __del__(self) -> None:
        _Cycle.freed_on.append(threading.current_thread().name)


def _allocate_on_a_worker() -> list[list]:
    """Containers made (and kept: freeing them lowers the collector's count again) on a worker."""
    kept: list[list] = []

    def churn() -> None:
        kept.extend([] for _ in range(20_000))  # far past the youngest generation's threshold

    worker = threading.Thread(target=churn, name="worker")
    worker.start()
    worker.join()
    return kept


def test_a_window_switches_automatic_collection_off_and_frees_cycles_on_the_gui_thread(qtbot) -> None:
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    assert not gc.isenabled()
    assert install_gui_thread_gc() is install_gui_thread_gc()  # one per application

    _Cycle.freed_on.clear()
    _Cycle()
    kept = _allocate_on_a_worker()
    assert _Cycle.freed_on == []  # the worker allocated plenty and still freed nothing
    qtbot.waitUntil(lambda: _Cycle.freed_on != [], timeout=5000)
    assert _Cycle.freed_on == [threading.main_thread().name]
    assert len(kept) == 20_000


def test_collector_is_a_child_of_the_application(qapp) -> None:
    collector = install_gui_thread_gc(qapp)
    assert collector is not None and collector.parent() is qapp
    assert qapp.findChild(GuiThreadCollector, COLLECTOR_NAME) is collector


def test_a_full_collection_runs_at_most_once_a_minute(monkeypatch) -> None:
    """Each full pass holds the GUI thread ~0.1-0.2 s with torch loaded: when every generation is due,
    the oldest is collected once, then the middle one until a minute has passed."""
    from segstudio.gui import gui_thread_gc

    collected: list[int] = []
    monkeypatch.setattr(gui_thread_gc.gc, "get_count", lambda: (800, 20, 20))
    monkeypatch.setattr(gui_thread_gc.gc, "collect", lambda generation=2: collected.append(generation) or 0)
    monkeypatch.setattr(gui_thread_gc, "_last_full", gui_thread_gc.time.monotonic() - 61)
    for _ in range(3):
        gui_thread_gc.collect_due()
    assert collected == [2, 1, 1]
    monkeypatch.setattr(gui_thread_gc.gc, "get_count", lambda: (800, 5, 20))
    gui_thread_gc.collect_due()
    assert collected[-1] == 0  # the middle generation not due: the youngest only


def test_the_suite_catches_a_worker_that_collects(qapp) -> None:
    """tests/conftest.py fails any test during which a worker thread ran a collection once the collector
    was installed: the rare segfault becomes a deterministic failure. Its guard, checked here."""
    install_gui_thread_gc(qapp)
    guard = next(cb for cb in gc.callbacks if getattr(cb, "__name__", "") == "_gc_off_main_thread")
    recorded = guard.__globals__["_WORKER_COLLECTIONS"]
    worker = threading.Thread(target=gc.collect, name="collecting-worker")
    worker.start()
    worker.join()
    seen = list(recorded)
    recorded.clear()  # this test's own collection is the point, not a failure
    assert seen and "collecting-worker" in seen[0]
