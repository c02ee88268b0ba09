"""The fine-tune window as a user meets it: a titled window owned by the main window that fits the
screen and closes with Esc, readable plots with whole-epoch ticks, every class listed, a truthful base
line, the ± of each estimate, counts without hashing masks, and no version from a run cancelled
before it beat its start."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QProcess, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow

from segstudio.gui.finetune_panel import FinetunePanel
from segstudio.ml import manifest as manifest_module
from tests.gui.test_finetune_panel import project  # noqa: F401 - the shared fixture: 10 of 12 images done


@pytest.fixture
def main_window(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    window.resize(800, 600)
    window.show()
    return window


def test_titled_window_owned_by_the_main_window_fits_the_screen_and_closes_with_esc(
    qtbot, project, main_window
):
    panel = FinetunePanel(project, main_window)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.isWindow() and panel.parentWidget() is main_window
    assert panel.windowTitle() == "Fine-tune - photos"
    area = (main_window.screen() or QGuiApplication.primaryScreen()).availableGeometry()
    assert panel.width() <= area.width() and panel.height() <= area.height()
    assert area.contains(panel.frameGeometry().topLeft())
    panel.resize(panel.width() - 100, panel.height() - 100)  # resizable
    assert panel.loss_plot.height() >= 150 and panel.miou_plot.height() >= 150  # tall enough to read
    qtbot.keyClick(panel, Qt.Key.Key_Escape)
    assert not panel.isVisible()


def test_while_training_closing_only_hides(qtbot, project, main_window, monkeypatch):
    panel = FinetunePanel(project, main_window)
    qtbot.addWidget(panel)
    panel.show()
    monkeypatch.setattr(panel, "is_running", lambda: True)
    panel.close()
    assert not panel.isVisible()
    import shiboken6

    assert shiboken6.isValid(panel)  # not deleted: the run and its curves live on


def test_plots_have_whole_epoch_ticks_and_a_hint_instead_of_an_empty_axis(qtbot, project):
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    panel.epochs_spin.setValue(25)
    axis = panel.loss_plot.getAxis("bottom")
    assert axis._tickSpacing is not None and all(float(s).is_integer() for s, _ in axis._tickSpacing)
    assert panel.loss_plot.viewRange()[0][1] == pytest.approx(25, rel=0.05)
    assert all(h.isVisible() for h in panel.curves._hints)
    panel.handle_event({"event": "start", "epochs": 3, "version": "v1"})
    assert [s for s, _ in panel.loss_plot.getAxis("bottom")._tickSpacing] == [1, 1]
    panel.handle_event({"event": "batch", "epoch": 1, "iter": 1, "iters": 2, "loss": 1.5})
    panel.handle_event({"event": "val", "epoch": 0, "miou": 0.25, "per_class_iou": {}, "baseline": True})
    assert not any(h.isVisible() for h in panel.curves._hints)
    assert list(panel.miou_curve.getData()[1]) == [25.0]  # percent


def test_every_class_is_listed_before_and_during_a_run(qtbot, project):
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    names = project.scheme.names
    table = panel.class_table
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == names
    panel.handle_event(
        {"event": "val", "epoch": 0, "baseline": True, "miou": 0.5, "per_class_iou": {n: 0.5 for n in names}}
    )
    panel.handle_event({"event": "val", "epoch": 1, "miou": 0.6, "per_class_iou": {names[0]: 0.75}})
    assert table.rowCount() == len(names)
    assert [table.item(r, 1).text() for r in range(len(names))] == ["75.0%"] + ["n/a"] * (len(names) - 1)
    assert [table.item(r, 2).text() for r in range(len(names))] == ["50.0%"] * len(names)  # the start column


def test_base_line_names_the_weights_file_the_workbench_predicts_with_and_training_uses_it(
    qtbot, project, tmp_path, monkeypatch
):
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"x")
    project.set_setting("gui.weights", {"weights": "file", "path": str(weights), "version": None})
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    assert "mine.pt" in panel.base_label.text() and not panel.arch_combo.isEnabled()
    started = {}
    monkeypatch.setattr(QProcess, "start", lambda self, program, args: started.setdefault("args", args))
    panel.start()
    args = started["args"]
    manifest = manifest_module.TrainManifest.load(args[args.index("--manifest") + 1])
    assert manifest.base.kind == "checkpoint" and manifest.base.checkpoint == str(weights)
    panel.shutdown()


def test_counts_come_from_the_database_without_reading_masks(qtbot, project, monkeypatch):
    def no_hashing(path):
        raise AssertionError(f"the panel hashed {path} just to show counts")

    monkeypatch.setattr(manifest_module, "file_digest", no_hashing)
    project.set_setting("val_fraction", 0.0)
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    panel.refresh()
    # 10 done, all in train (val_fraction 0): 3 will move to val for a sounder comparison
    assert panel.counts_label.text().startswith("10 train / 0 val (3 more go to val")


def test_estimates_show_their_uncertainty(qtbot, project):
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    panel.handle_event(
        {
            "event": "val",
            "epoch": 1,
            "miou": 0.471,
            "miou_pm": 0.032,
            "val_images": 8,
            "per_class_iou": {},
            "gain": {"value": 0.025, "plus_minus": 0.031, "n": 8},
        }
    )
    assert panel.estimate_label.text() == (
        "Latest evaluation (epoch 1): val mIoU 47.1 ± 3.2 % on 8 images; "
        "vs the base model +2.5 ± 3.1 points on 8 images"
    )


def test_a_run_cancelled_before_it_beat_its_start_adds_no_version(qtbot, project, tmp_path):
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"x")
    panel._run_version = "v1"
    for event in (
        {"event": "val", "epoch": 0, "baseline": True, "miou": 0.446, "per_class_iou": {}},
        {"event": "val", "epoch": 1, "miou": 0.396, "per_class_iou": {}},
        {"event": "checkpoint", "path": str(checkpoint), "metrics": {"miou": 0.396}},
        {
            "event": "done",
            "reason": "cancelled",
            "checkpoint": str(checkpoint),
            "best_miou": 0.396,
            "baseline_miou": 0.446,
            "beats_start": False,
            "keep": False,
        },
    ):
        panel.handle_event(event)
    with qtbot.waitSignal(panel.training_finished) as finished:
        panel._finished(130, QProcess.ExitStatus.NormalExit)
    assert finished.args == ["cancelled"]
    assert project.model_versions() == [] and panel.new_version is None
    assert "no new version" in panel.status_label.text()


def test_a_killed_run_without_a_done_event_is_judged_from_its_val_events(qtbot, project, tmp_path):
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"x")
    panel._run_version, panel._cancel_requested = "v1", True
    panel.handle_event({"event": "val", "epoch": 0, "baseline": True, "miou": 0.446, "per_class_iou": {}})
    panel.handle_event({"event": "checkpoint", "path": str(checkpoint), "metrics": {"miou": 0.30}})
    panel._finished(137, QProcess.ExitStatus.CrashExit)
    assert project.model_versions() == []
