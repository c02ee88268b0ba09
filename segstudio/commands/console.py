"""What long CLI commands show: a progress bar at a terminal, nothing in a pipe unless asked,
and for `segstudio train` a human progress line instead of the GUI's JSON lines.

One place decides, so every command behaves the same:
- `predict`, `export`, `import`: a bar on stderr when stderr is a terminal; `--quiet` hides it,
  `--progress` shows it in a pipe or log too (then as plain lines every few seconds, no redraws).
- `train`: JSON lines on stdout with `--json` (the GUI passes it) or when stdout is not a terminal
  (`segstudio train ... | jq` keeps working); otherwise `TrainConsole` on stderr: one live line
  (epoch, step, loss, val mIoU, img/s, ETA) redrawn at a terminal, one line per epoch in a log,
  and a final summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from segstudio.core.durations import format_duration
from segstudio.core.task_handle import ConsoleProgress, NullTask, TaskHandle

__all__ = [
    "TrainConsole",
    "add_progress_arguments",
    "add_train_output_arguments",
    "task_progress",
    "train_progress",
    "wants_json",
]


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams (pytest's capture)
        return False


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    group.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a terminal"
    )


def task_progress(label: str, args: argparse.Namespace, stream: TextIO | None = None) -> TaskHandle:
    """The task handle a command reports to: a bar (terminal or --progress) or a silent one."""
    stream = stream or sys.stderr
    if getattr(args, "quiet", False):
        return NullTask()
    live = _isatty(stream)
    if live or getattr(args, "progress", False):
        return ConsoleProgress(label, stream=stream, live=live)
    return NullTask()


def add_train_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true",
        help="progress as JSON lines on stdout (what the GUI reads; the default when stdout is not a terminal)",
    )  # fmt: skip


def wants_json(args: argparse.Namespace, stdout: TextIO | None = None) -> bool:
    return bool(getattr(args, "json", False)) or not _isatty(stdout or sys.stdout)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


class TrainConsole:
    """Renders trainer events (`segstudio.ml.progress`) for people; `handle(event)` per event."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = _isatty(self.stream) if live is None else live
        self.epochs = 0
        self.val: str = "val mIoU n/a"
        self.last_rate: float | None = None
        self._line_open = False
        self._started = time.monotonic()

    def _write_line(self, text: str) -> None:
        if self._line_open:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self._line_open = False
        self.stream.flush()

    def _redraw(self, text: str) -> None:
        if not self.live:
            return
        self.stream.write("\r\x1b[2K" + text)
        self._line_open = True
        self.stream.flush()

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        method = getattr(self, f"_on_{kind}", None)
        if method is not None:
            method(event)

    def _on_start(self, e: dict[str, Any]) -> None:
        self.epochs = int(e.get("epochs") or 0)
        resumed = f", resumed after epoch {e['resumed_from']}" if e.get("resumed_from") else ""
        self._write_line(
            f"training {e.get('arch')} on {e.get('device')} (x{e.get('world_size', 1)}): {e.get('train_images')} train / "
            f"{e.get('val_images')} val images, up to {self.epochs} epochs of {e.get('iters_per_epoch')} steps{resumed}"
        )

    def _on_batch(self, e: dict[str, Any]) -> None:
        self.last_rate = e.get("images_per_s")
        rate = f"{self.last_rate:.1f} img/s" if self.last_rate else "? img/s"
        loss = e.get("loss")
        self._redraw(
            f"epoch {e.get('epoch')}/{self.epochs}  step {e.get('iter')}/{e.get('iters')}  "
            f"loss {loss:.4f}  {self.val}  {rate}  ETA {format_duration(e.get('eta_s'))}"
            if loss is not None
            else f"epoch {e.get('epoch')}/{self.epochs}  step {e.get('iter')}/{e.get('iters')}"
        )

    def _on_epoch(self, e: dict[str, Any]) -> None:
        self._epoch = e

    def _on_val(self, e: dict[str, Any]) -> None:
        best = e.get("best_miou")
        self.val = f"val mIoU {_pct(e.get('miou'))}" + (f" (best {_pct(best)})" if best is not None else "")
        if not e.get("epoch"):
            self._write_line(f"starting model: val mIoU {_pct(e.get('miou'))}")
            return
        epoch = getattr(self, "_epoch", {})
        rate = f"  {self.last_rate:.1f} img/s" if self.last_rate else ""
        loss = epoch.get("loss")
        self._write_line(
            f"epoch {e['epoch']}/{self.epochs}  loss {loss if loss is None else f'{loss:.4f}'}  {self.val}"
            f"{'  *new best*' if e.get('improved') else ''}{rate}  {format_duration(epoch.get('time_s'))}/epoch  "
            f"ETA {format_duration(epoch.get('eta_s'))}"
        )

    def _on_warning(self, e: dict[str, Any]) -> None:
        self._write_line(f"warning: {e.get('message')}")

    def _on_done(self, e: dict[str, Any]) -> None:
        best_epoch = f" at epoch {e['best_epoch']}" if e.get("best_epoch") else ""
        self._write_line(
            f"finished ({e.get('reason')}) after {e.get('epochs_run')} epoch(s) in "
            f"{format_duration(time.monotonic() - self._started)}: val mIoU {_pct(e.get('baseline_miou'))} -> "
            f"{_pct(e.get('best_miou'))}{best_epoch}"
        )


def train_progress(
    args: argparse.Namespace, enabled: bool, stream: TextIO | None = None, stdout: TextIO | None = None
) -> Any:
    """The trainer's progress writer: JSON lines (see `wants_json`) or a `TrainConsole` on stderr.

    Either way it is a `ProgressWriter` (events recorded, `batch` throttled), so the trainer cannot
    tell the difference; only rank 0 (`enabled`) shows anything.
    """
    from segstudio.ml.progress import ProgressWriter

    if wants_json(args, stdout):
        return ProgressWriter(stream=stdout, enabled=enabled)
    console = TrainConsole(stream)

    class HumanProgress(ProgressWriter):
        def emit(self, event: str, **fields: Any) -> None:
            super().emit(event, **fields)  # validates and records; never writes JSON (enabled=False)
            if enabled:
                console.handle(self.events[-1])

    return HumanProgress(enabled=False)
