"""Model -> CRF…: the project's dense CRF on/off, its settings (reset to defaults), and tuning in the background.

Thin: settings are `ml.crf.CRFParams` saved with `save_params`; tuning is `ml.crf_project.tune_project`
run by the GUI's task helper (`gui.background_tasks.TaskRunner`; the window stays usable, Cancel stops it between CRF runs). `crf_changed` tells
the window which CRF new predictions use (None = off).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.background_tasks import TaskRunner
from segstudio.ml.crf import CRFParams, load_params, save_params
from segstudio.ml.crf_project import TUNE_REPORT_KEY, project_crf, tune_project

__all__ = ["CRFPanel"]

LABELS = {
    "iterations": "Mean-field iterations",
    "gaussian_sxy": "Smoothness width (px)",
    "gaussian_compat": "Smoothness weight",
    "bilateral_sxy": "Appearance width (px)",
    "bilateral_srgb": "Appearance colour range",
    "bilateral_compat": "Appearance weight",
    "scale": "Run at 1/scale resolution",
    "max_pixels": "Max grid pixels",
    "min_pixels": "Min grid pixels",
}


class CRFPanel(QDialog):
    crf_changed = Signal(object)  # CRFParams or None (off)

    def __init__(self, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Dense CRF")
        self.project = project
        self.runner = TaskRunner(self, name="segstudio-crf-tune")
        self.runner.status.connect(self.report_label_text)
        self.runner.progress.connect(
            lambda done, total: self.report_label_text(f"Tuning… {done}/{total} settings tried")
        )
        self.runner.done.connect(self._tuned)
        self.runner.failed.connect(lambda message: self._finished(f"Tuning failed: {message}"))
        self.runner.cancelled.connect(lambda: self._finished("Tuning cancelled; nothing changed."))
        self.enabled_box = QCheckBox("Use the dense CRF for this project (predict, eval, workbench)")
        form = QFormLayout()
        self.editors: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for f in fields(CRFParams):
            if f.name == "enabled":
                continue
            box: QSpinBox | QDoubleSpinBox
            if f.name in ("iterations", "max_pixels", "min_pixels"):
                box = QSpinBox()
                box.setRange(1, 50 if f.name == "iterations" else 16_000_000)
            else:
                box = QDoubleSpinBox()
                box.setRange(0.0 if f.name.endswith("compat") else 0.1, 500.0)
                box.setDecimals(2)
            self.editors[f.name] = box
            form.addRow(LABELS.get(f.name, f.name), box)
        self.report_label = QLabel()
        self.report_label.setWordWrap(True)
        self.reset_button = QPushButton("Reset to defaults")
        self.save_button = QPushButton("Save")
        self.tune_button = QPushButton("Tune on corrected images")
        self.cancel_button = QPushButton("Cancel tuning")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        for button in (self.reset_button, self.save_button, self.tune_button, self.cancel_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.enabled_box)
        layout.addLayout(form)
        layout.addWidget(self.report_label)
        layout.addLayout(buttons)
        self.reset_button.clicked.connect(
            lambda: self.show_params(CRFParams(enabled=self.enabled_box.isChecked()))
        )
        self.save_button.clicked.connect(self.save)
        self.tune_button.clicked.connect(self.start_tuning)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.show_params(replace(load_params(project), enabled=project_crf(project) is not None))
        self._show_report()

    def show_params(self, params: CRFParams) -> None:
        self.enabled_box.setChecked(params.enabled)
        for name, box in self.editors.items():
            box.setValue(getattr(params, name))

    def params(self) -> CRFParams:
        values = {name: box.value() for name, box in self.editors.items()}
        return CRFParams.from_dict({**values, "enabled": self.enabled_box.isChecked()})

    def save(self) -> None:
        params = self.params()
        save_params(self.project, params)
        self.crf_changed.emit(params if params.enabled else None)
        self.report_label.setText(f"Saved: CRF {'on' if params.enabled else 'off'}. " + self._last_summary())

    def _last_summary(self) -> str:
        report = self.project.get_setting(TUNE_REPORT_KEY)
        return (
            f"Last tuning: {report['summary']}" if report else "Not tuned yet (needs >= 2 corrected images)."
        )

    def _show_report(self) -> None:
        self.report_label.setText(self._last_summary())

    def start_tuning(self) -> None:
        """Tune in the background; the result is saved only if it beats no CRF on held-out images."""
        if self.runner.is_running():
            return
        self.tune_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.runner.start(lambda state: tune_project(self.project, state))

    def report_label_text(self, text: str) -> None:
        self.report_label.setText(text)

    def _tuned(self, report: Any) -> None:
        params = load_params(self.project)
        self.show_params(params)
        self.crf_changed.emit(params if params.enabled else None)
        self._finished(report.summary())

    def _finished(self, message: str) -> None:
        self.tune_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.report_label.setText(message)

    def shutdown(self) -> None:
        self.runner.cancel()
        self.runner.wait()
