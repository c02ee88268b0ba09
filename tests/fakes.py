"""Test doubles shared by several test packages (kept out of the production code)."""

from __future__ import annotations

from segstudio.core.task_handle import NullTask

__all__ = ["RecordingTask"]


class RecordingTask(NullTask):
    """Keeps every status and progress call, for tests that assert progress was reported."""

    def __init__(self, cancel_after: int | None = None) -> None:
        super().__init__()
        self.statuses: list[str] = []
        self.progress: list[tuple[int, int]] = []
        self._cancel_after = cancel_after

    def set_status(self, message: str) -> None:
        self.statuses.append(message)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.append((done, total))
        if self._cancel_after is not None and len(self.progress) >= self._cancel_after:
            self.cancel()
