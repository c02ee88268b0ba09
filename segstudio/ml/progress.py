"""The trainer's progress protocol: one JSON object per line on stdout.

Why JSON lines: the trainer runs as a child process (`segstudio train`, possibly under torchrun),
so any front end - the GUI panel, a CI log, a shell pipe into `jq` - can follow it by reading
lines, and a crash in the child never takes the reader down.

Every object has an ``"event"`` key, one of `EVENTS`:

- ``start``: ``epochs, iters_per_epoch, train_images, val_images, classes, device, world_size,
  arch, base, resumed_from`` (epoch number or null)
- ``batch``: ``epoch, iter, iters, loss, lr, images_per_s`` (epoch average so far), ``step_s`` (wall time
  of this step, data loading included), ``eta_s``
- ``epoch``: ``epoch, loss, lr, time_s, eta_s``
- ``val``: ``epoch`` (0 = the starting model, before any training), ``miou, pixel_accuracy,
  mean_pixel_accuracy, fwiou, per_class_iou`` (dict name -> IoU or null), ``best_miou, improved``,
  ``miou_pm`` (half-width of mIoU's 95 % bootstrap interval over val images), ``val_images``,
  ``gain`` (epochs >= 1: ``{value, plus_minus, n}``, mIoU minus the starting model's on the same images)
- ``checkpoint``: ``path, epoch, version, metrics`` (a new best checkpoint is on disk)
- ``done``: ``reason`` (completed | early_stop | time_budget | cancelled), ``checkpoint`` (path or
  null), ``version, best_miou, baseline_miou, best_epoch, epochs_run``, ``miou_estimate`` and ``gain``
  (``{value, plus_minus, n}`` or null), ``beats_start`` (bool or null: not measured), ``keep`` (whether
  the checkpoint should become a model version: false for a run cancelled before it beat its start)
- ``click_model``: ``step, steps, loss`` while the click model trains (`TrainConfig.click_model`), then
  ``path, steps, seconds, reason`` once it is saved next to the checkpoint (docs/click-model.md)
- ``error``: ``message``
- ``warning``: ``message``
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO

__all__ = ["EVENTS", "EVENT_FIELDS", "ProgressWriter", "parse_progress_line"]

_METRICS = ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou", "per_class_iou", "labelled_pixels")
#: the protocol itself: the fields each event may carry (the writer refuses others, so the child and
#: its readers - gui/finetune_panel.py, commands/console.py - cannot drift apart; tests/ml/test_progress.py)
EVENT_FIELDS: dict[str, frozenset[str]] = {
    "start": frozenset(
        [
            "epochs",
            "iters_per_epoch",
            "train_images",
            "val_images",
            "classes",
            "device",
            "world_size",
            "arch",
            "base",
            "parent",
            "version",
            "precision",
            "resumed_from",
            "time_budget_s",
            "output_dir",
            "fingerprint",
        ]
    ),
    "batch": frozenset(["epoch", "iter", "iters", "loss", "lr", "images_per_s", "step_s", "eta_s"]),
    "epoch": frozenset(["epoch", "loss", "lr", "time_s", "eta_s", "iterations"]),
    "val": frozenset(
        (*_METRICS, "epoch", "miou_pm", "val_images", "best_miou", "improved", "baseline", "gain")
    ),
    "checkpoint": frozenset(["path", "epoch", "version", "metrics"]),
    "done": frozenset(
        [
            "reason",
            "checkpoint",
            "version",
            "parent",
            "arch",
            "best_miou",
            "baseline_miou",
            "best_epoch",
            "epochs_run",
            "metrics",
            "miou_estimate",
            "gain",
            "beats_start",
            "keep",
        ]
    ),
    "error": frozenset({"message"}),
    "warning": frozenset({"message"}),
    "click_model": frozenset({"step", "steps", "loss", "path", "seconds", "reason"}),
}
EVENTS = tuple(EVENT_FIELDS)


def _jsonable(value: Any) -> Any:
    """NaN/inf are not JSON; they become null so every reader can parse every line."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


class ProgressWriter:
    """Writes protocol events; silent when `enabled` is False (every rank but 0 under torchrun)."""

    def __init__(
        self, stream: TextIO | None = None, enabled: bool = True, batch_interval_s: float = 0.25
    ) -> None:
        self._stream = stream
        self.enabled = enabled
        self._batch_interval = batch_interval_s
        self._last_batch = -math.inf
        self.events: list[dict[str, Any]] = []  # kept for callers that run the trainer in-process

    def emit(self, event: str, **fields: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown progress event {event!r}")
        undeclared = set(fields) - EVENT_FIELDS[event]
        if undeclared:
            raise ValueError(f"{event} event fields {sorted(undeclared)} are not in progress.EVENT_FIELDS")
        record = _jsonable({"event": event, **fields})
        self.events.append(record)
        if not self.enabled:
            return
        stream = self._stream or sys.stdout
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        stream.flush()

    def wants_batch(self) -> bool:
        """Whether the next unforced `batch` call would be written (lets callers skip costly measurements)."""
        return time.monotonic() - self._last_batch >= self._batch_interval

    def batch(self, force: bool = False, **fields: Any) -> None:
        """A batch event at most every `batch_interval_s` (plus forced ones), so fast runs don't flood the reader."""
        now = time.monotonic()
        if force or now - self._last_batch >= self._batch_interval:
            self._last_batch = now
            self.emit("batch", **fields)


def parse_progress_line(line: str | bytes) -> dict[str, Any] | None:
    """The event in one output line, or None for anything else (warnings, stray prints, partial lines)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("event") not in EVENTS:
        return None
    return record
