"""One way to run a dialog's task (gui/dialog_task.py) and futures adopted by TaskRunner (the opener)."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QProgressBar, QPushButton, QVBoxLayout

from segstudio.core.errors import CancelledError
from segstudio.gui.background_tasks import TaskRunner, TaskState
from segstudio.gui.dialog_task import DialogTask

WAIT = 10_000


class Slow:
    """A task that runs until cancelled (or released), and says whether it has really ended."""

    def __init__(self, result: object = None) -> None:
        self.started, self.release, self.ended = threading.Event(), threading.Event(), threading.Event()
        self.result = result

    def __call__(self, state: TaskState) -> object:
        self.started.set()
        try:
            state.set_progress(1, 4)
            while not self.release.wait(0.01):
                state.check_cancelled()
            return self.result
        finally:
            self.ended.set()


def _dialog(qtbot):
    dialog = QDialog()
    qtbot.addWidget(dialog)
    bar, close = QProgressBar(dialog), QPushButton("Close", dialog)
    layout = QVBoxLayout(dialog)
    layout.addWidget(bar)
    layout.addWidget(close)
    busy: list[bool] = []
    task = DialogTask(dialog, bar, close, busy.append, "test-dialog-task")
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog, task, bar, close, busy


def test_progress_busy_state_and_the_close_button_cancels(qtbot):
    dialog, task, bar, close, busy = _dialog(qtbot)
    slow = Slow()
    cancelled = []
    task.cancelled.connect(lambda: cancelled.append(True))
    task.start(slow, on_done=lambda result: None)
    assert busy == [True] and close.text() == "Cancel" and task.is_running()
    qtbot.waitUntil(lambda: bar.value() == 1 and bar.maximum() == 4, timeout=WAIT)
    qtbot.mouseClick(close, Qt.MouseButton.LeftButton)  # the user cancels
    qtbot.waitUntil(lambda: cancelled == [True], timeout=WAIT)
    assert not task.is_running() and busy[-1] is False and close.text() == "Close"
    assert dialog.isVisible()  # Cancel did not close the dialog; the next click does
    qtbot.mouseClick(close, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_start_cancels_the_last_task_and_only_the_latest_result_arrives(qtbot):
    _, task, *_ = _dialog(qtbot)
    first, second = Slow("first"), Slow("second")
    got: list[object] = []
    task.start(first, on_done=got.append)
    qtbot.waitUntil(first.started.is_set, timeout=WAIT)
    task.start(second, on_done=got.append)
    qtbot.waitUntil(first.ended.is_set, timeout=WAIT)  # cancelled, not left running
    second.release.set()
    qtbot.waitUntil(lambda: got == ["second"], timeout=WAIT)


def test_closing_the_dialog_with_escape_cancels_and_waits_for_the_work(qtbot):
    dialog, task, _bar, _close, busy = _dialog(qtbot)
    slow = Slow()
    task.start(slow, on_done=lambda result: None)
    qtbot.waitUntil(slow.started.is_set, timeout=WAIT)
    QTest.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert slow.ended.is_set()  # closing waited: nothing runs on behind the closed dialog
    assert not task.is_running() and busy[-1] is False


def test_failures_arrive_as_a_signal_with_the_users_message(qtbot):
    _, task, *_ = _dialog(qtbot)

    def broken(state: TaskState) -> None:
        raise ValueError("bad value")

    with qtbot.waitSignal(task.failed, timeout=WAIT) as blocker:
        task.start(broken, on_done=lambda result: None)
    assert "ValueError: bad value" in blocker.args[0]


def test_an_adopted_future_reports_queued_without_a_waiting_thread(qtbot):
    runner = TaskRunner()
    done = Future()
    done.set_result("ready")
    got: list[object] = []
    runner.done.connect(got.append)
    runner.adopt(done)
    assert got == []  # queued: never inside adopt(), even when the future is already done
    qtbot.waitUntil(lambda: got == ["ready"], timeout=WAIT)

    pending: Future = Future()
    cancels: list[bool] = []
    threads = threading.active_count()
    runner.adopt(pending, on_cancel=lambda: cancels.append(True))
    assert threading.active_count() == threads and runner.is_running()  # no thread polls the future
    with qtbot.waitSignal(runner.cancelled, timeout=WAIT):
        runner.cancel()
        assert cancels == [True]  # the cancel reached the adopted work
        pending.set_exception(CancelledError("stopped at its next check"))
    assert not runner.is_running()
