"""The seam between the window and the inference worker: its signals, declared once, and its methods.

Why a module of its own: `ModelLink` must not import `inference_worker` (torch, seconds) before a
model is needed, yet it has to know what the worker offers. `InferenceSignals` is the one
declaration of the worker's signals: the real controller, `ModelLink` (which relays every one of
them, by name, from `SIGNAL_NAMES`) and the test fakes all inherit it, so a signal added here is
relayed everywhere and a signal added anywhere else fails `tests/gui/test_inference_client.py`.
`InferenceClient` is the structural type `ModelLink` holds (the shape of napari's
`_data_protocols.py`): methods plus signals, checked by the same test against the real controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PySide6.QtCore import QObject, Signal, SignalInstance

if TYPE_CHECKING:
    from segstudio.ml.spec import ModelSpec

__all__ = ["SIGNAL_NAMES", "InferenceClient", "InferenceSignals", "Severity", "signal_signatures"]


class Severity:
    """The second argument of `status_message`: is the note a plain step, or a fallback the user must know of."""

    INFO = "info"  # e.g. "bfloat16: 99.7 % agreement with float32, 1.8x faster: using bfloat16"
    WARNING = "warning"  # e.g. "GPU out of memory: retrying with 512 px tiles" (listed in Problems too)


class InferenceSignals(QObject):
    """Every signal of the inference worker (delivered queued, in the GUI thread)."""

    prediction_ready = Signal(str, object)  # (rel_path, ml.predict.PredictionResult), already saved
    progress = Signal(int, int, str)  # batch progress (done, total, rel_path), one step per image
    state_changed = Signal(str)  # "loading", "predicting", "SAM embedding", "idle", "error"
    error = Signal(str, str)  # (rel_path, message); rel_path "" for model-loading errors
    model_loaded = Signal(str, str)  # (description, device label)
    status_message = Signal(str, str)  # (message, Severity): predictor notes (OOM / precision fallbacks)
    embedding_ready = Signal(str, object)  # (rel_path, key): a SAM embedding is in the runtime's cache


def signal_signatures(obj: QObject | type[QObject]) -> dict[str, str]:
    """name -> Qt signature of every signal `obj` declares beyond QObject's own (for the seam's tests)."""
    meta = obj.staticMetaObject
    base = QObject.staticMetaObject.methodCount()
    out: dict[str, str] = {}
    for i in range(base, meta.methodCount()):
        method = meta.method(i)
        if method.methodType() == method.MethodType.Signal:
            out[bytes(method.name().data()).decode()] = bytes(method.methodSignature().data()).decode()
    return out


#: the names ModelLink relays, in declaration order
SIGNAL_NAMES: tuple[str, ...] = tuple(signal_signatures(InferenceSignals))


@runtime_checkable
class InferenceClient(Protocol):
    """What the window asks of the inference worker; every method returns at once (work is queued)."""

    spec: ModelSpec
    prediction_ready: SignalInstance
    progress: SignalInstance
    state_changed: SignalInstance
    error: SignalInstance
    model_loaded: SignalInstance
    status_message: SignalInstance
    embedding_ready: SignalInstance

    def request(self, rel_path: str) -> None:
        """Predict the image on screen first; a newer request supersedes."""

    def prefetch(self, rel_paths: list[str]) -> None:
        """Predict these next (replaces the previous prefetch list)."""

    def predict_batch(self, rel_paths: list[str]) -> None:
        """A cancellable batch, after the current image and the prefetches."""

    def cancel_batch(self) -> None: ...

    def set_model(self, spec: ModelSpec) -> None:
        """Hot swap: the worker loads `spec` before its next prediction."""

    def set_sam(self, runtime: Any) -> None:
        """An `ml.sam_engine.SamRuntime` whose image embeddings the worker computes from now on."""

    def embed(self, current: str | None, upcoming: list[str], active: bool) -> None:
        """SAM embeddings: `current` first (before predictions when `active`), then `upcoming`."""

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything and wait for the worker; True when it has finished."""
