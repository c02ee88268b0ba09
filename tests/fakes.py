"""Test doubles shared by several test packages (kept out of the production code)."""

from __future__ import annotations

from segstudio.core.task_handle import NullTask
from segstudio.gui.inference_client import InferenceSignals

__all__ = ["FakeInferenceClient", "RecordingTask"]


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


class FakeInferenceClient(InferenceSignals):
    """An `InferenceClient` that does nothing: tests subclass it for the behaviour they need.

    It inherits the worker's signal declarations (gui/inference_client.py), so a fake can never lag
    behind the real worker's signals; `tests/gui/test_inference_client.py` checks it against the Protocol.
    """

    def __init__(self, project: object = None, spec: object = None) -> None:
        super().__init__()
        from segstudio.ml.spec import ModelSpec

        self.project = project
        self.spec = spec if spec is not None else ModelSpec()
        self.models: list[object] = []  # every spec passed to set_model
        self.stopped = False

    def request(self, rel_path: str) -> None:
        pass

    def prefetch(self, rel_paths: list[str]) -> None:
        pass

    def predict_batch(self, rel_paths: list[str]) -> None:
        pass

    def cancel_batch(self) -> None:
        pass

    def set_model(self, spec: object) -> None:
        self.spec = spec
        self.models.append(spec)

    def set_sam(self, runtime: object) -> None:
        pass

    def embed(self, current: str | None, upcoming: list[str], active: bool) -> None:
        pass

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        self.stopped = True
        return True
