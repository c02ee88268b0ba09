"""Train > Fine-tune: one button that fine-tunes the project model on the user's corrected images.

Why a child process: training runs as `python -m segstudio train --manifest FILE`, so a CUDA crash,
an out-of-memory kill or a Cancel never takes the editor down, and the same command runs under
torchrun. This window holds the project lock, so it exports a training manifest (paths, split,
scheme, base checkpoint, settings) for the child, follows the child's JSON-lines progress
(`segstudio.ml.progress`), and registers the new model version itself when the child has written a
checkpoint - also after Cancel, which keeps the best checkpoint so far.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.durations import format_duration
from segstudio.core.errors import SegStudioError
from segstudio.core.project import Project, Status
from segstudio.gui.finetune_plots import ClassIouTable, TrainingCurves, pct
from segstudio.ml.catalog import FINETUNE_ARCHS, FINETUNE_DEFAULT_ARCH, describe
from segstudio.ml.manifest import manifest_from_project
from segstudio.ml.progress import parse_progress_line
from segstudio.ml.selection import format_estimate, keeps_version, val_target

__all__ = ["AUTO_USE_SETTING", "FinetunePanel", "done_counts"]

#: project setting: make a finished fine-tune the active model without asking
AUTO_USE_SETTING = "finetune.auto_use"
CLICK_MODEL_MIN_DONE = (
    20  # done train images from which the click-model tick is on by default (docs/click-model.md)
)
#: the workbench's "Model > Use weights file..." choice (main_window), which the worker predicts with
_WEIGHTS_SETTING = "gui.weights"
_KILL_AFTER_MS = 30_000
_PREFERRED_SIZE = (1040, 860)


def done_counts(project: Project) -> tuple[int, int]:
    """(train, val) done images from the database alone: no mask is read or hashed (that waits for Start)."""
    done = [r for r in project.images(status=Status.DONE) if not r.error]
    val = sum(r.split == "val" for r in done)
    return len(done) - val, val


class FinetunePanel(QWidget):
    """Settings, the Fine-tune/Cancel buttons, live curves and the before/after result."""

    #: (version, checkpoint path) when the user (or the auto-use setting) makes a new version the model
    model_version_ready = Signal(str, str)
    #: the child ended: completed | early_stop | time_budget | cancelled | failed
    training_finished = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        #: more TrainConfig fields for the manifest (power users, tests: workers, arch, min_iters_per_epoch...)
        self.extra_settings: dict[str, Any] = {}
        self.python = sys.executable
        self._process: QProcess | None = None
        self._buffer = b""
        self._stderr_tail: list[str] = []
        self._fitted = False
        self._base_arg = "active"
        self._reset_run_state()
        # a window of its own, but owned by the main window: it stays on top of it and closes with it
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.setWindowTitle(f"Fine-tune - {Path(project.image_dir).name}")
        self._build()
        self.refresh()
        # fine-tuning a trained model on a few corrected images: train only the heads (fast on CPU, and
        # the backbone cannot overfit them); a new model needs its backbone trained
        few = done_counts(project)[0] < 30
        self.freeze_check.setChecked(few and self._base_arg != "auto")

    # ------------------------------------------------------------------------------------ window

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            self.fit_to_screen()

    def fit_to_screen(self) -> None:
        """Preferred size, but never larger than 90 % of the screen; centred on the main window."""
        owner = self.parentWidget()
        screen = (owner.screen() if owner is not None else None) or QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        width = min(_PREFERRED_SIZE[0], int(area.width() * 0.9))
        height = min(_PREFERRED_SIZE[1], int(area.height() * 0.9))
        self.setMinimumSize(min(self.minimumSizeHint().width(), width), min(420, height))
        self.resize(width, height)
        frame = self.frameGeometry()
        frame.moveCenter(owner.frameGeometry().center() if owner is not None else area.center())
        frame.moveLeft(max(area.left(), min(frame.left(), area.right() - frame.width())))
        frame.moveTop(max(area.top(), min(frame.top(), area.bottom() - frame.height())))
        self.move(frame.topLeft())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Esc closes the window, as in a dialog (child widgets that use Esc themselves get it first)."""
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """While a run goes on, closing only hides the window (Train > Fine-tune... shows it again)."""
        if self.is_running():
            event.ignore()
            self.hide()
            return
        super().closeEvent(event)

    # ------------------------------------------------------------------------------------ widgets

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self._build_data_box(), stretch=1)
        top.addWidget(self._build_settings_box(), stretch=1)
        layout.addLayout(top)

        buttons = QHBoxLayout()
        self.fine_tune_button = QPushButton("Fine-tune")
        self.fine_tune_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.fine_tune_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        layout.addWidget(self.status_label)
        layout.addWidget(self.progress_bar)

        self.curves = TrainingCurves()
        self.loss_plot, self.loss_curve = self.curves.loss_plot, self.curves.loss_curve
        self.miou_plot, self.miou_curve = self.curves.miou_plot, self.curves.miou_curve
        self.curves.reset(self.epochs_spin.value())
        self.class_table = ClassIouTable(self.project.scheme.names)
        view = QSplitter(Qt.Orientation.Horizontal)
        view.addWidget(self.curves)
        view.addWidget(self.class_table)
        view.setStretchFactor(0, 3)
        view.setStretchFactor(1, 1)
        view.setChildrenCollapsible(False)
        layout.addWidget(view, stretch=1)

        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        layout.addWidget(self.estimate_label)
        result_row = QHBoxLayout()
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.use_button = QPushButton("Use this model")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_new_model)
        result_row.addWidget(self.result_label, stretch=1)
        result_row.addWidget(self.use_button)
        layout.addLayout(result_row)

    def _build_data_box(self) -> QGroupBox:
        data_box = QGroupBox("Data and base model")
        data_form = QFormLayout(data_box)
        self.counts_label = QLabel()
        self.counts_label.setWordWrap(True)
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        self.arch_combo = QComboBox()
        for index, arch in enumerate(FINETUNE_ARCHS):  # the registry's choices, each with its "when to use"
            self.arch_combo.addItem(arch)
            self.arch_combo.setItemData(index, describe(arch), Qt.ItemDataRole.ToolTipRole)
        self.arch_combo.setCurrentText(FINETUNE_DEFAULT_ARCH)
        self.arch_help = QLabel(describe(FINETUNE_DEFAULT_ARCH))
        self.arch_help.setWordWrap(True)
        self.arch_combo.setToolTip("Architecture of a new model (a base model keeps its own)")
        self.arch_combo.currentTextChanged.connect(
            lambda arch: (self.arch_help.setText(describe(arch)), self.refresh())
        )
        data_form.addRow("Done images:", self.counts_label)
        data_form.addRow("Base model:", self.base_label)
        data_form.addRow("Architecture:", self.arch_combo)
        data_form.addRow("", self.arch_help)
        return data_box

    def _build_settings_box(self) -> QGroupBox:
        settings_box = QGroupBox("Settings")
        form = QFormLayout(settings_box)
        self.epochs_spin = QSpinBox(minimum=1, maximum=1000, value=20)
        self.epochs_spin.valueChanged.connect(
            lambda n: None if self.is_running() or self.events else self.curves.reset(n)
        )
        self.budget_check = QCheckBox("Stop after")
        self.budget_spin = QSpinBox(minimum=1, maximum=24 * 60, value=10, suffix=" min")
        self.budget_spin.setEnabled(False)
        self.budget_check.toggled.connect(self.budget_spin.setEnabled)
        budget_row = QHBoxLayout()
        budget_row.addWidget(self.budget_check)
        budget_row.addWidget(self.budget_spin)
        self.lr_spin = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=1.0, singleStep=0.001, value=0.01)
        self.batch_spin = QSpinBox(minimum=2, maximum=256, value=4)
        self.crop_spin = QSpinBox(minimum=32, maximum=2048, singleStep=32, value=384, suffix=" px")
        self.freeze_check = QCheckBox("Freeze backbone (much faster on CPU; good for a few images)")
        self.auto_use_check = QCheckBox("Use the new model automatically when it beats the base model")
        self.auto_use_check.setChecked(bool(self.project.get_setting(AUTO_USE_SETTING, False)))
        self.auto_use_check.toggled.connect(lambda on: self.project.set_setting(AUTO_USE_SETTING, bool(on)))
        form.addRow("Epochs (max):", self.epochs_spin)
        form.addRow("Time budget:", budget_row)
        form.addRow("Learning rate:", self.lr_spin)
        form.addRow("Batch:", self.batch_spin)
        form.addRow("Crop:", self.crop_spin)
        form.addRow(self.freeze_check)
        #: the smart tool's learned engine (docs/click-model.md); on by default from CLICK_MODEL_MIN_DONE images
        self.click_model_check = QCheckBox(
            "Click model (the smart click's learned engine, trained after the model)"
        )
        self.click_model_check.clicked.connect(lambda: setattr(self, "_click_model_chosen", True))
        form.addRow(self.click_model_check)
        form.addRow(self.auto_use_check)
        return settings_box

    # ------------------------------------------------------------------------------------ state

    def _reset_run_state(self) -> None:
        self.loss_points: list[tuple[float, float]] = []
        self.miou_points: list[tuple[float, float]] = []
        self.events: list[dict[str, Any]] = []
        self.new_version: str | None = None
        self.new_checkpoint: str | None = None
        self._run_version: str | None = None
        self._run_arch: str | None = None
        self._run_parent: str | None = None
        self._epochs = 1
        self._last_checkpoint: dict[str, Any] | None = None
        self._done: dict[str, Any] | None = None
        self._baseline: float | None = None
        self._cancel_requested = False

    def is_running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    def refresh(self) -> None:
        """Re-read counts and the base model from the project (call after marking images done)."""
        self.refresh_counts_only()
        train = done_counts(self.project)[0]
        self._base_arg, text, new_model = self._base_choice()
        self.base_label.setText(text)
        self.arch_combo.setEnabled(new_model and not self.is_running())
        if not getattr(self, "_click_model_chosen", False):
            self.click_model_check.setChecked(train >= CLICK_MODEL_MIN_DONE)
        if not self.is_running():
            self.fine_tune_button.setEnabled(train > 0)
            if not train:
                self.status_label.setText("Mark some corrected images as done (train split) to fine-tune.")

    def _base_choice(self) -> tuple[str, str, bool]:
        """(the trainer's --base, what the user reads, whether a new model's arch can be chosen): the
        active version, else the weights file the workbench predicts with, else what `auto` resolves to."""
        active = self.project.active_model_version()
        if active is not None:
            miou = active.metrics.get("miou") if isinstance(active.metrics, dict) else None
            return "active", f"{active.version} ({active.arch}, val mIoU {pct(miou)})", False
        chosen = self.project.get_setting(_WEIGHTS_SETTING)
        path = chosen.get("path") if isinstance(chosen, dict) and chosen.get("weights") == "file" else None
        if path and Path(path).is_file():
            return str(path), f"weights file {Path(path).name} (the model you predict with)", False
        from segstudio.ml.start_model import describe_auto_start

        return "auto", f"no project model yet: {describe_auto_start(self.arch_combo.currentText())}", True

    def refresh_counts_only(self) -> None:
        """Counts from the database, and how many images the run will move to val (`selection.val_target`)."""
        train, val = done_counts(self.project)
        text = f"{train} train / {val} val"
        moving = min(train, val_target(train + val) - val)
        if moving > 0:
            text += (
                f" ({moving} more go to val when training starts, so the comparison rests on {val + moving})"
            )
        self.counts_label.setText(text)

    def settings(self) -> dict[str, Any]:
        """The TrainConfig fields the widgets describe (plus `extra_settings`)."""
        values: dict[str, Any] = {
            "epochs": self.epochs_spin.value(),
            "time_budget_s": self.budget_spin.value() * 60.0 if self.budget_check.isChecked() else None,
            "lr": self.lr_spin.value(),
            "batch": self.batch_spin.value(),
            "crop": self.crop_spin.value(),
            "freeze_backbone": self.freeze_check.isChecked(),
            "click_model": self.click_model_check.isChecked(),
        }
        values.update(self.extra_settings)
        return values

    # ------------------------------------------------------------------------------------ running

    def start(self) -> None:
        """Export the manifest and start the training child."""
        if self.is_running():
            return
        self._reset_run_state()
        self.refresh()
        settings = self.settings()
        self.curves.reset(int(settings.get("epochs", 1)))
        self.class_table.clear_values()
        self.result_label.setText("")
        self.estimate_label.setText("")
        self.use_button.setEnabled(False)
        arch = settings.pop("arch", None) or (
            self.arch_combo.currentText() if self._base_arg == "auto" else None
        )
        try:
            manifest = manifest_from_project(self.project, base=self._base_arg, arch=arch, settings=settings)
            path = manifest.save(Path(manifest.output_dir) / "manifest.json")
        except SegStudioError as error:
            self.status_label.setText(f"Cannot start: {error}")
            self.training_finished.emit("failed")
            return
        self._run_version, self._run_parent = manifest.version, manifest.base.version
        self._epochs = int(settings.get("epochs", 1))
        self.refresh_counts_only()  # the val split may have been topped up
        self._buffer = b""
        self._stderr_tail = []
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._process_error)
        self._process = process
        self.fine_tune_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status_label.setText(f"Starting training of {manifest.version}...")
        self.progress_bar.setValue(0)
        process.start(self.python, ["-m", "segstudio", "train", "--manifest", str(path), "--json"])

    def cancel(self) -> None:
        """Ask the child to stop (SIGTERM): it finishes the batch, keeps the best checkpoint, exits."""
        if not self.is_running():
            return
        self._cancel_requested = True
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Cancelling (the best checkpoint so far is kept)...")
        assert self._process is not None
        self._process.terminate()
        process = self._process
        # The process is the timer's context: if it is deleted first, the timer never fires.
        QTimer.singleShot(
            _KILL_AFTER_MS,
            process,
            lambda: process.kill() if process.state() != QProcess.ProcessState.NotRunning else None,
        )

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop a running child before the window closes."""
        if self.is_running():
            assert self._process is not None
            self._process.terminate()
            if not self._process.waitForFinished(timeout_ms):
                self._process.kill()
                self._process.waitForFinished(2000)

    # ------------------------------------------------------------------------------------ progress

    def _read_stdout(self) -> None:
        assert self._process is not None
        self._buffer += bytes(self._process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            event = parse_progress_line(line)
            if event is not None:
                self.handle_event(event)

    def _read_stderr(self) -> None:
        assert self._process is not None
        text = bytes(self._process.readAllStandardError().data()).decode("utf-8", errors="replace")
        self._stderr_tail = (self._stderr_tail + text.splitlines())[-20:]

    def handle_event(self, event: dict[str, Any]) -> None:
        """Update curves, table and labels from one progress event."""
        self.events.append(event)
        kind = event["event"]
        if kind == "start":
            self._on_start(event)
        elif kind == "batch":
            self._on_batch(event)
        elif kind == "val":
            self._on_val(event)
        elif kind == "checkpoint":
            self._last_checkpoint = event
        elif kind == "done":
            self._done = event
        elif kind == "click_model":
            done = event.get("path") is not None or event.get("reason") is not None
            self.status_label.setText(
                "Click model saved."
                if done
                else f"Training the click model: step {event.get('step')} / {event.get('steps')}"
            )
        elif kind == "error":
            self.status_label.setText(f"Training failed: {event.get('message')}")
        elif kind == "warning":
            self._stderr_tail.append(str(event.get("message")))

    def _on_start(self, event: dict[str, Any]) -> None:
        self._epochs = int(event.get("epochs") or self._epochs)
        self.curves.reset(self._epochs)
        self._run_arch = event.get("arch")
        self._run_parent = event.get("parent", self._run_parent)
        resumed = event.get("resumed_from")
        self.status_label.setText(
            f"Training {event.get('version')} from {event.get('base')} on {event.get('train_images')} images "
            f"({event.get('device')}, {event.get('precision')})"
            + (f", resumed after epoch {resumed}" if resumed else "")
        )

    def _on_batch(self, event: dict[str, Any]) -> None:
        iters = max(1, int(event.get("iters") or 1))
        x = int(event["epoch"]) - 1 + int(event["iter"]) / iters
        if event.get("loss") is not None:
            self.loss_points.append((x, float(event["loss"])))
            self.curves.set_loss(self.loss_points)
        self.progress_bar.setValue(int(1000 * min(1.0, x / max(1, self._epochs))))
        self.status_label.setText(
            f"Epoch {event['epoch']}/{self._epochs} - loss {float(event.get('loss') or 0):.3f} - "
            f"{float(event.get('images_per_s') or 0):.1f} img/s - ETA {format_duration(event.get('eta_s'))}"
        )

    def _on_val(self, event: dict[str, Any]) -> None:
        if event.get("miou") is not None:
            self.miou_points.append((float(event["epoch"]), float(event["miou"])))
            self.curves.set_miou(self.miou_points)
        baseline = bool(event.get("baseline"))
        if baseline:
            self._baseline = event.get("miou")
        self.class_table.show_ious(event.get("per_class_iou") or {}, start=baseline)
        estimate = {
            "value": event.get("miou"),
            "plus_minus": event.get("miou_pm"),
            "n": event.get("val_images") or 0,
        }
        # Says which evaluation it is: the result below shows the kept (best) epoch, not this one.
        where = (
            "Base model before training" if baseline else f"Latest evaluation (epoch {event.get('epoch')})"
        )
        text = f"{where}: val mIoU {format_estimate(estimate)}"
        if event.get("gain"):
            text += f"; vs the base model {format_estimate(event['gain'], signed=True)}"
        self.estimate_label.setText(text if event.get("val_images") else "")

    # ------------------------------------------------------------------------------------ finishing

    def _process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.status_label.setText(
                f"Cannot start the trainer ({self.python}): {self._process.errorString() if self._process else ''}"
            )
            self._end("failed")

    def _finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if self._process is not None:
            self._read_stdout()
        if self._buffer.strip():
            event = parse_progress_line(self._buffer)
            self._buffer = b""
            if event is not None:
                self.handle_event(event)
        done = self._done or {}
        reason = done.get("reason") or ("cancelled" if self._cancel_requested else "failed")
        checkpoint = done.get("checkpoint") or (self._last_checkpoint or {}).get("path")
        best = done.get("best_miou", ((self._last_checkpoint or {}).get("metrics") or {}).get("miou"))
        # a run cancelled before it beat its start adds no version (the child says so; if it died, we judge)
        kept = done.get("keep", keeps_version(reason, best, self._baseline)) is not False
        if checkpoint and Path(checkpoint).is_file() and self._run_version and kept:
            metrics = done.get("metrics") or (self._last_checkpoint or {}).get("metrics") or {}
            try:
                self.project.add_model_version(
                    self._run_version,
                    checkpoint,
                    done.get("arch") or self._run_arch or "",
                    metrics,
                    done.get("parent", self._run_parent),
                )
            except SegStudioError as error:
                self.status_label.setText(f"Could not register the new model: {error}")
            else:
                self.new_version, self.new_checkpoint = self._run_version, str(checkpoint)
        if reason == "failed":
            detail = next((e.get("message") for e in reversed(self.events) if e["event"] == "error"), None)
            detail = detail or "\n".join(self._stderr_tail[-5:]) or f"exit code {exit_code}"
            self.status_label.setText(f"Training failed: {detail}")
        self._show_result(reason, done)
        self._end(reason)

    def _show_result(self, reason: str, done: dict[str, Any]) -> None:
        if self.new_version is None:
            if done.get("keep") is False:
                self.status_label.setText(
                    "Training cancelled before it beat the starting model: no new version."
                )
            elif reason != "failed":
                self.status_label.setText(f"Training {reason}; no checkpoint was written.")
            return
        before = done.get("baseline_miou", self._baseline)
        after = done.get("best_miou")
        if after is None and self._last_checkpoint:
            after = (self._last_checkpoint.get("metrics") or {}).get("miou")
        base = self._run_parent or "starting model"
        text = (
            f"<b>Kept model {self.new_version}</b> (its best epoch), val mIoU: before ({base}) "
            f"<b>{pct(before)}</b> &nbsp;&rarr;&nbsp; after ({self.new_version}) <b>{pct(after)}</b>"
        )
        gain = done.get("gain")
        if gain and gain.get("value") is not None:
            text += f"<br>Gain of the kept model over {base}: {format_estimate(gain, signed=True)}"
            if gain.get("plus_minus") is not None and abs(gain["value"]) < gain["plus_minus"]:
                text += " (within the uncertainty: more done images would tell)"
        for message in dict.fromkeys(e.get("message") for e in self.events if e["event"] == "warning"):
            # what the version lacks or what the run worked around (no click model; smaller GPU tiles)
            text += f"<br>Note: {html.escape(str(message))}"
        self.result_label.setText(text)
        self.status_label.setText(f"Training {reason.replace('_', ' ')}: new model {self.new_version} saved.")
        self.use_button.setEnabled(True)
        better = done.get("beats_start", before is None or after is None or after >= before) is not False
        if self.auto_use_check.isChecked() and better:
            self.use_new_model()

    def _end(self, reason: str) -> None:
        self.fine_tune_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self._process is not None:
            self._process.deleteLater()
            self._process = None
        self.refresh_counts_only()
        self.training_finished.emit(reason)

    def use_new_model(self) -> None:
        """Make the new version the project model and tell the inference worker."""
        if self.new_version is None or self.new_checkpoint is None:
            return
        self.project.set_active_model_version(self.new_version)
        self.use_button.setEnabled(False)
        self.status_label.setText(f"Now using model {self.new_version}.")
        self.refresh()
        self.model_version_ready.emit(self.new_version, self.new_checkpoint)
