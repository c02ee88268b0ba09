"""The GUI thread never waits for a click engine (issue #21): smart clicks compute on the click worker.

A test engine that sleeps in every update (a slow click model, GrabCut on a big photo) and answers a
20x20 square around each positive click, so the mask says exactly which clicks a result covered.
Everything goes through the real window: mouse clicks on the canvas, keys on the focused canvas.
Synthetic photos: no shared test data needed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from segstudio.core.document import UNLABELED
from segstudio.core.interactive.engines import ENGINES, Engine, register_engine
from segstudio.core.interactive.prompts import Prompts
from segstudio.gui.tools import Tool
from tests.gui.conftest import clicks_shown

NO = Qt.KeyboardModifier.NoModifier
SLEEP = 0.4  # seconds per update: far longer than any frame
HALF = 10  # the square's half side
A, B, C = (30, 30), (100, 80), (130, 30)


class SlowEngine(Engine):
    """Sleeps, then answers a square per positive click; records each call's positives."""

    name = "slow"
    calls: list[list[tuple[float, float]]] = []
    spans: list[tuple[float, float]] = []  # (start, end) of each update, perf_counter
    finished = threading.Event()  # set when an update returns (the worker is free again)

    def _region(self, prompts: Prompts, active_class: int, barrier: np.ndarray | None) -> np.ndarray:
        SlowEngine.finished.clear()
        SlowEngine.calls.append(list(prompts.positives))
        start = time.perf_counter()
        time.sleep(SLEEP)
        SlowEngine.spans.append((start, time.perf_counter()))
        assert self.image is not None
        region = np.zeros(self.image.shape[:2], bool)
        for x, y in prompts.positives:
            region[int(y) - HALF : int(y) + HALF, int(x) - HALF : int(x) + HALF] = True
        SlowEngine.finished.set()
        return region


@pytest.fixture
def slow_window(shown_window, tmp_path, qtbot):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(folder / name)
    register_engine("slow", SlowEngine)
    SlowEngine.calls, SlowEngine.spans = [], []
    SlowEngine.finished.set()
    window = shown_window(folder)
    window.tool_state.active_class = 1
    window.tool_state.engine = "slow"  # a test engine: not one of the options bar's choices
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_S)
    assert window.tool_state.tool == Tool.CLICK
    smart = window.tools.smart
    qtbot.waitUntil(lambda: smart.is_ready and "slow" in smart.engines, timeout=30_000)
    yield window
    ENGINES.pop("slow", None)


def click(window, point: tuple[int, int], button=Qt.MouseButton.LeftButton) -> None:
    QTest.mouseClick(window.canvas.viewport(), button, NO, window.canvas.to_widget(*point))


def updates_returned(qtbot, count: int) -> None:
    """Wait until the engine has run `count` updates and is idle. Not `finished.wait()` alone: on a
    loaded machine the last update may not have started yet, and `finished` is still set from the one
    before."""
    qtbot.waitUntil(lambda: len(SlowEngine.calls) >= count and SlowEngine.finished.is_set(), timeout=20_000)


def key(window, k: Qt.Key, modifier=NO) -> None:
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, k, modifier)


def square(labels: np.ndarray, point: tuple[int, int]) -> np.ndarray:
    x, y = point
    return labels[
        y - HALF + 3 : y + HALF - 3, x - HALF + 3 : x + HALF - 3
    ]  # inside: clicks land within a pixel


def test_a_slow_engine_does_not_block_the_event_loop(slow_window):
    window = slow_window
    ticks: list[float] = []
    timer = QTimer(window)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    QTest.qWait(50)
    start = time.perf_counter()
    click(window, A)
    assert time.perf_counter() - start < SLEEP / 2  # the click returned before the engine finished
    assert window.tools.smart.busy
    assert window.canvas.viewport().cursor().shape() == Qt.CursorShape.BusyCursor  # says it computes
    clicks_shown(window)
    timer.stop()
    ((began, ended),) = SlowEngine.spans
    during = [t for t in ticks if began < t < ended]
    # the timer kept firing while the engine slept (on the GUI thread: not once); a count, not a gap
    # bound, so that a loaded machine does not make it flaky
    assert len(during) >= 5, len(during)
    doc = window.session.document
    assert (square(doc.labels, A) == 1).all() and doc.history.undo_count == 0  # shown, still open
    assert window.canvas.viewport().cursor().shape() != Qt.CursorShape.BusyCursor
    assert window.tools.smart.latencies[-1] >= SLEEP  # press -> mask shown, what the user waited


def test_quick_clicks_give_the_result_of_all_in_order(slow_window):
    window = slow_window
    click(window, A)
    click(window, B)  # while A computes
    click(window, C)
    clicks_shown(window)
    doc = window.session.document
    assert all((square(doc.labels, p) == 1).all() for p in (A, B, C))
    # A alone first; B and C queued meanwhile are one request with all three, in click order
    assert [[(round(x), round(y)) for x, y in call] for call in SlowEngine.calls] == [[A], [A, B, C]]
    assert window.tools.smart.session.actions == 3
    key(window, Qt.Key.Key_Return)
    assert doc.history.undo_count == 1


def test_enter_and_backspace_wait_their_turn(slow_window):
    window = slow_window
    doc = window.session.document
    click(window, A)
    click(window, B)
    key(window, Qt.Key.Key_Backspace)  # drops B (the latest click), after B was made
    clicks_shown(window)
    assert (square(doc.labels, A) == 1).all() and (square(doc.labels, B) == UNLABELED).all()
    click(window, C)
    key(window, Qt.Key.Key_Return)  # while C computes: accepts the object *with* C, as one step
    assert doc.history.undo_count == 0
    clicks_shown(window)
    assert doc.history.undo_count == 1 and not doc.in_stroke
    assert (square(doc.labels, A) == 1).all() and (square(doc.labels, C) == 1).all()


def test_switching_image_while_a_click_computes_applies_nothing_there(slow_window, qtbot):
    window = slow_window
    first = window.session.document
    click(window, A)
    assert window.tools.smart.busy
    key(window, Qt.Key.Key_PageDown)  # the next image, while the engine still sleeps on A
    assert not window.tools.smart.busy  # dropped at once
    qtbot.waitUntil(
        lambda: window.session.document is not None and window.session.document is not first, timeout=20_000
    )
    second = window.session.document
    updates_returned(qtbot, 1)  # the stale update has returned...
    QTest.qWait(100)  # ...and its queued result had every chance to be delivered
    assert (second.labels == UNLABELED).all() and not second.in_stroke and second.history.undo_count == 0
    assert (first.labels == UNLABELED).all() and not first.in_stroke  # nothing shown: nothing recorded
    assert window.tools.smart.session is None and len(window.prompt_marks.marks) == 0


def test_undo_after_an_async_click_restores_one_step(slow_window, qtbot):
    window = slow_window
    doc = window.session.document
    click(window, A)
    click(window, B)
    clicks_shown(window)
    key(window, Qt.Key.Key_Return)
    assert doc.history.undo_count == 1
    kept = doc.labels.copy()
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.labels == UNLABELED).all()  # both clicks: one step
    key(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.labels, kept)
    # Ctrl+Z while clicks still compute: the open object, as shown, is closed and undone; the late
    # result and the queued click do not bring it back
    click(window, C)
    clicks_shown(window)
    click(window, (C[0], C[1] + 40))
    click(window, (C[0] - 40, C[1] + 40))  # queued behind the one computing
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    clicks_shown(window)
    np.testing.assert_array_equal(doc.labels, kept)
    assert window.tools.smart.session is None and not doc.in_stroke
    updates_returned(qtbot, 4)
    QTest.qWait(int(SLEEP * 1000))  # all the time a wrongly queued third click needs to start
    np.testing.assert_array_equal(doc.labels, kept)
    assert len(SlowEngine.calls) == 4  # [A], [A, B], [C], [C, C2]: the queued third click never ran


def test_escape_while_computing_drops_the_object(slow_window, qtbot):
    window = slow_window
    doc = window.session.document
    click(window, A)
    clicks_shown(window)
    click(window, B)
    key(window, Qt.Key.Key_Escape)
    assert not window.tools.smart.busy
    updates_returned(qtbot, 2)
    QTest.qWait(100)
    assert (doc.labels == UNLABELED).all() and not doc.in_stroke and doc.history.undo_count == 0


class SlowPrepareEngine(SlowEngine):
    """Takes a while to prepare each image (a click model loading, a big photo's superpixels)."""

    name = "slowprep"
    PREPARE = 1.0

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        time.sleep(self.PREPARE)
        super().prepare(image, probabilities)


def test_a_click_made_while_the_engine_prepares_applies_when_it_is_ready(slow_window, qtbot):
    """A user clicks as soon as the photo shows; the engine is still preparing it. The click must not
    vanish: it waits (the status bar says so) and is applied once the engine is ready."""
    window = slow_window
    register_engine("slowprep", SlowPrepareEngine)
    try:
        smart = window.tools.smart
        messages: list[str] = []
        smart.status.connect(messages.append)
        window.tool_state.engine = "slowprep"  # a test engine: not one of the options bar's choices
        key(window, Qt.Key.Key_PageDown)  # the next photo: its engine is prepared now
        qtbot.waitUntil(lambda: window.session.record.rel_path == "b.png", timeout=10_000)
        assert not smart.is_ready
        click(window, A)
        assert any("your click applies when it is ready" in m for m in messages), messages
        qtbot.waitUntil(lambda: smart.is_ready, timeout=30_000)
        clicks_shown(window)
        assert (square(window.session.document.labels, A) == 1).all()
        assert [[(round(x), round(y)) for x, y in call] for call in SlowEngine.calls] == [[A]]
    finally:
        ENGINES.pop("slowprep", None)


def test_closing_the_window_ends_the_click_worker(slow_window, qtbot):
    """No thread is left inside an engine when the app exits (a daemon thread in native code then
    aborts the process: 'terminate called without an active exception')."""
    window = slow_window
    click(window, A)  # computing while the window closes
    assert any(t.name == "smart-clicks" and t.is_alive() for t in threading.enumerate())
    window.close()
    assert not any(t.name in ("smart-clicks", "smart-tools") and t.is_alive() for t in threading.enumerate())
