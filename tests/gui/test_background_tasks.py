"""The GUI's one background-work helper: outcomes as queued signals, latest task wins, stale dropped."""

from __future__ import annotations

import threading

import pytest

from segstudio.core.errors import ProjectError
from segstudio.gui.background_tasks import JobQueue, TaskRunner, TaskState

WAIT = 5000


def _blocking(release: threading.Event, result: object):
    """A task that reports progress, then waits for the test (or a cancel) before returning."""

    def work(state: TaskState) -> object:
        state.set_progress(1, 2)
        while not release.wait(0.01):
            state.check_cancelled()
        return result

    return work


def test_done_arrives_on_the_gui_thread_with_progress(qtbot) -> None:
    runner = TaskRunner()
    seen: list[object] = []
    runner.progress.connect(lambda d, t: seen.append(("progress", d, t, threading.current_thread())))
    runner.status.connect(lambda m: seen.append(("status", m)))

    def work(state: TaskState) -> int:
        state.set_status("adding")
        state.set_progress(1, 1)
        return 41 + 1

    with qtbot.waitSignal(runner.done, timeout=WAIT) as blocker:
        runner.start(work)
    assert blocker.args == [42]
    qtbot.waitUntil(lambda: not runner.is_running(), timeout=WAIT)
    assert ("status", "adding") in seen
    assert ("progress", 1, 1, threading.main_thread()) in seen


def test_start_cancels_the_previous_task_and_drops_its_result(qtbot) -> None:
    runner = TaskRunner()
    results: list[object] = []
    progress: list[tuple[int, int]] = []
    discarded: list[object] = []
    runner.done.connect(results.append)
    runner.cancelled.connect(lambda: results.append("cancelled"))
    runner.progress.connect(lambda d, t: progress.append((d, t)))

    first_release = threading.Event()
    first = runner.start(_blocking(first_release, "first"), on_done=results.append, discard=discarded.append)
    qtbot.waitUntil(lambda: progress == [(1, 2)], timeout=WAIT)
    with qtbot.waitSignal(runner.done, timeout=WAIT) as blocker:
        runner.start(lambda state: "second")
    assert first.is_cancelled()
    assert blocker.args == ["second"]
    first_release.set()
    qtbot.wait(100)
    assert results == ["second"]  # the first task's ending (cancelled) never reached the GUI


def test_stale_result_is_discarded_not_delivered(qtbot) -> None:
    """A task that finishes although superseded: its result goes to `discard` (e.g. close a project)."""
    runner = TaskRunner()
    delivered: list[object] = []
    discarded: list[object] = []
    runner.done.connect(delivered.append)
    release = threading.Event()

    def ignores_cancel(state: TaskState) -> str:
        release.wait(5)
        return "late project"

    runner.start(ignores_cancel, on_done=delivered.append, discard=discarded.append)
    runner.abandon()
    release.set()
    qtbot.waitUntil(lambda: discarded == ["late project"], timeout=WAIT)
    assert delivered == [] and not runner.is_running()


def test_cancel_reports_cancelled(qtbot) -> None:
    runner = TaskRunner()
    runner.start(_blocking(threading.Event(), "never"))
    with qtbot.waitSignals([runner.cancelled, runner.finished], timeout=WAIT):
        runner.cancel()
    assert not runner.is_running()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ProjectError("image folder /x does not exist; check the path"),
            "image folder /x does not exist; check the path",
        ),
        (ZeroDivisionError("division by zero"), "unexpected error: ZeroDivisionError: division by zero"),
    ],
)
def test_failure_becomes_the_failed_signal(qtbot, error, message) -> None:
    runner = TaskRunner()

    def work(state: TaskState) -> None:
        raise error

    with qtbot.waitSignal(runner.failed, timeout=WAIT) as blocker:
        runner.start(work)
    assert blocker.args == [message]


def test_job_queue_runs_in_order_and_reports_each(qtbot) -> None:
    queue = JobQueue()
    order: list[int] = []
    done: list[tuple[object, object]] = []
    failed: list[tuple[object, str]] = []
    queue.done.connect(lambda key, result: done.append((key, result)))
    queue.failed.connect(lambda key, message: failed.append((key, message)))
    gate = threading.Event()
    queue.submit(lambda s: gate.wait(5), key="gate")
    for i in range(5):
        queue.submit(lambda s, i=i: order.append(i) or i, key=i)
    queue.submit(lambda s: 1 / 0, key="bad")
    gate.set()
    assert queue.wait_idle(5)
    assert order == [0, 1, 2, 3, 4]
    qtbot.waitUntil(lambda: len(done) == 6 and len(failed) == 1, timeout=WAIT)
    assert failed == [("bad", "unexpected error: ZeroDivisionError: division by zero")]
    queue.stop()


def test_job_queue_lifo_serves_newest_first_and_replaces_same_key(qtbot) -> None:
    queue = JobQueue(lifo=True)
    order: list[str] = []
    gate = threading.Event()
    gate_running = threading.Event()
    queue.submit(lambda s: gate_running.set() or gate.wait(5), key="gate")
    assert gate_running.wait(5)  # the worker holds the gate job; the rest queue behind it
    old = queue.submit(lambda s: order.append("a-old"), key="a")
    queue.submit(lambda s: order.append("b"), key="b")
    queue.submit(lambda s: order.append("a"), key="a")  # replaces the pending "a"
    gate.set()
    assert queue.wait_idle(5)
    assert order == ["a", "b"] and old.cancelled()
    queue.stop()


def test_job_queue_future_carries_the_original_error() -> None:
    queue = JobQueue()

    def work(state: TaskState) -> None:
        raise ProjectError("gone")

    future = queue.submit(work)
    with pytest.raises(ProjectError, match="gone"):
        future.result(timeout=5)
    queue.stop()
