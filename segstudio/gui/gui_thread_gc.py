"""Python's cycle collector runs on the GUI thread only, while a Qt application is up.

Why: the collector runs in whichever thread happens to cross an allocation threshold, and in
SegStudio that is usually a worker (export, decoding, training, smart clicks). When such a pass
frees a cycle that holds a Python-owned Qt object (a closed dialog, a timer, a window a test
dropped), the QObject is destroyed on the worker while the GUI thread may be painting or
dispatching to it: a segfault whose timing depends on allocation, seen in CI in the GUI thread
during an export. pyqtgraph documents the same remedy (its `GarbageCollector`): switch automatic
collection off and collect from a GUI-thread timer, one generation at a time as the thresholds say.
Reference counting still frees everything that is not in a cycle at once, on any thread.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

__all__ = ["COLLECTOR_NAME", "GuiThreadCollector", "collect_due", "install_gui_thread_gc"]

COLLECTOR_NAME = "segstudio_gui_thread_gc"
INTERVAL_MS = 500  # frequent enough that cycles of big arrays do not pile up between passes


#: a full collection walks every object (~0.1-0.2 s with torch and a model loaded, the GUI thread held
#: either way: the collector holds the GIL); the automatic collector skips most of them (it waits for
#: the survivors to grow by 25 %, a count Python does not expose), so at most one per this many seconds
FULL_COLLECTION_EVERY_S = 60.0
_last_full = time.monotonic()
#: a collector was installed in this process: from then on no other thread may collect
installed = False


def collect_due() -> int:
    """Collect the oldest generation whose count passed its threshold (as the automatic collector
    would have; the oldest at most every FULL_COLLECTION_EVERY_S); the number of unreachable
    objects found, 0 when nothing was due."""
    global _last_full
    counts, thresholds = gc.get_count(), gc.get_threshold()
    due = -1
    for generation in range(3):
        if thresholds[generation] and counts[generation] > thresholds[generation]:
            due = generation
        else:
            break
    if due == 2:
        now = time.monotonic()
        if now - _last_full < FULL_COLLECTION_EVERY_S:
            due = 1
        else:
            _last_full = now
    return gc.collect(due) if due >= 0 else 0


class GuiThreadCollector(QObject):
    """Owns the timer; a child of the application, so it lives exactly as long as Qt does."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.setObjectName(COLLECTOR_NAME)
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(collect_due)
        self._timer.start()
        gc.disable()
        global installed
        installed = True


def install_gui_thread_gc(app: QCoreApplication | None = None) -> GuiThreadCollector | None:
    """Install the collector on `app` (default: the running application) once; call on its thread."""
    app = app or QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return None
    existing = app.findChild(GuiThreadCollector, COLLECTOR_NAME)
    if existing is not None:
        gc.disable()  # in case something switched automatic collection back on
        return existing
    return GuiThreadCollector(app)
