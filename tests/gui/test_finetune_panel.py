"""The fine-tuning panel drives a real `segstudio train` child: curves fill, cancel works, the new
version is registered and offered; the versions dialog rolls back."""

from __future__ import annotations

import cv2
import pytest
from PySide6.QtCore import Qt

from segstudio.core.durations import format_duration
from segstudio.core.project import Project, Status
from segstudio.core.schemes import LabelScheme
from segstudio.gui.finetune_panel import FinetunePanel
from segstudio.gui.versions_dialog import VersionsDialog
from segstudio.ml.synthetic import make_shapes_dataset, shapes_scheme_dict

ARCH = "lraspp_mobilenet_v3_large"
TINY = {"workers": 0, "min_iters_per_epoch": 3, "device": "cpu", "arch": ARCH, "patience": 0}
RUN_TIMEOUT_MS = 300_000


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    images, masks = make_shapes_dataset(12, 48, seed=11)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"img{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    project = Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict()))
    project.set_setting("val_fraction", 0.3)
    for rec in project.images()[:10]:
        project.save_mask(rec, masks[int(rec.rel_path[3:5])], status=Status.DONE)
    yield project
    project.close()


def _panel(qtbot, project, epochs: int) -> FinetunePanel:
    panel = FinetunePanel(project)
    qtbot.addWidget(panel)
    panel.extra_settings = dict(TINY)
    panel.epochs_spin.setValue(epochs)
    panel.crop_spin.setValue(48)
    panel.batch_spin.setValue(4)
    panel.lr_spin.setValue(0.02)
    return panel


def test_counts_and_base_shown(qtbot, project):
    panel = _panel(qtbot, project, 1)
    done = project.images(status=Status.DONE)
    train = sum(r.split == "train" for r in done)
    assert panel.counts_label.text().startswith(f"{train} train / {len(done) - train} val")
    # no version and no torchvision weights cached here: it says what will really be used
    assert (
        panel.base_label.text()
        == "no project model yet: a new model from scratch (no torchvision weights are cached)"
    )
    assert panel.fine_tune_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.settings()["epochs"] == 1 and panel.settings()["arch"] == ARCH
    # the simple settings reach the trainer's config: time budget (off by default), lr, batch, crop, freeze
    assert panel.settings()["time_budget_s"] is None
    panel.budget_check.setChecked(True)
    panel.budget_spin.setValue(3)
    panel.freeze_check.setChecked(True)
    settings = panel.settings()
    assert settings["time_budget_s"] == 180.0 and settings["freeze_backbone"] is True
    assert (settings["lr"], settings["batch"], settings["crop"]) == (pytest.approx(0.02), 4, 48)


@pytest.mark.slow
def test_tiny_run_fills_curves_and_offers_the_new_version(qtbot, project):
    panel = _panel(qtbot, project, 2)
    with qtbot.waitSignal(panel.training_finished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.fine_tune_button, Qt.MouseButton.LeftButton)
        assert panel.is_running() and panel.cancel_button.isEnabled()
    assert finished.args == ["completed"], panel.status_label.text()
    # live curves received points: loss per batch, val mIoU per epoch (0 = before training)
    assert len(panel.loss_points) >= 2
    assert len(panel.loss_curve.getData()[0]) == len(panel.loss_points)
    assert [x for x, _ in panel.miou_points] == [0.0, 1.0, 2.0]
    assert len(panel.miou_curve.getData()[1]) == 3
    assert panel.class_table.rowCount() == 4 and panel.class_table.item(1, 0).text() == "disk"
    last_val = [e for e in panel.events if e["event"] == "val"][-1]["per_class_iou"]
    shown = {panel.class_table.item(r, 0).text(): panel.class_table.item(r, 1).text() for r in range(4)}
    assert shown == {name: "n/a" if iou is None else f"{100 * iou:.1f}%" for name, iou in last_val.items()}
    # registered as v1, before/after shown, offered with one click
    assert panel.new_version == "v1"
    version = project.get_model_version("v1")
    assert version is not None and version.arch == ARCH
    assert version.metrics["miou"] == pytest.approx(max(y for x, y in panel.miou_points if x > 0))
    assert "before" in panel.result_label.text() and "after (v1)" in panel.result_label.text()
    assert project.active_model_version() is None  # not used until the user says so
    assert panel.use_button.isEnabled()
    with qtbot.waitSignal(panel.model_version_ready, timeout=5000) as ready:
        qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    assert ready.args == ["v1", str(version.checkpoint_path)]
    assert project.active_model_version().version == "v1"
    assert "v1" in panel.base_label.text()


@pytest.mark.slow
def test_cancel_keeps_best_checkpoint_and_auto_use_swaps_it_in(qtbot, project):
    panel = _panel(qtbot, project, 200)
    panel.auto_use_check.setChecked(True)
    assert project.get_setting("finetune.auto_use") is True
    qtbot.mouseClick(panel.fine_tune_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(e["event"] == "checkpoint" for e in panel.events), timeout=RUN_TIMEOUT_MS)
    assert panel.loss_points
    with (
        qtbot.waitSignal(panel.model_version_ready, timeout=RUN_TIMEOUT_MS) as ready,
        qtbot.waitSignal(panel.training_finished, timeout=RUN_TIMEOUT_MS) as finished,
    ):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["cancelled"]
    assert not panel.is_running() and panel.fine_tune_button.isEnabled()
    assert ready.args[0] == "v1" and project.active_model_version().version == "v1"
    assert max(x for x, _ in panel.miou_points) < 200  # it really stopped early


def test_versions_dialog_lists_metrics_and_rolls_back(qtbot, project, tmp_path):
    project.add_model_version("v1", tmp_path / "v1.pt", ARCH, {"miou": 0.5, "pixel_accuracy": 0.9}, None)
    project.add_model_version("v2", tmp_path / "v2.pt", ARCH, {"miou": 0.625, "pixel_accuracy": 0.95}, "v1")
    project.set_active_model_version("v2")
    dialog = VersionsDialog(project)
    qtbot.addWidget(dialog)
    table = dialog.table
    assert table.rowCount() == 2
    assert [table.item(r, 0).text() for r in range(2)] == ["v2", "v1"]  # newest first
    assert table.item(0, 1).text() == "yes" and table.item(1, 1).text() == ""
    assert table.item(0, 3).text() == "62.5%" and table.item(1, 3).text() == "50.0%"
    assert table.item(0, 6).text() == "v1"
    assert not dialog.use_button.isEnabled()
    dialog.select_version("v1")
    assert dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.version_activated, timeout=2000) as activated:
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert activated.args == ["v1"]
    assert project.active_model_version().version == "v1"
    assert dialog.table.item(1, 1).text() == "yes"


def test_progress_events_show_eta_throughput_and_per_class_iou(qtbot, project):
    """The panel renders what the trainer's JSON lines say: ETA and img/s per batch, IoU per class per val."""
    panel = _panel(qtbot, project, 3)
    panel.handle_event({"event": "start", "epochs": 3, "version": "v1", "base": "scratch", "train_images": 7})
    panel.handle_event(
        {
            "event": "batch",
            "epoch": 2,
            "iter": 1,
            "iters": 4,
            "loss": 0.75,
            "images_per_s": 12.5,
            "eta_s": 125,
        }
    )
    status = panel.status_label.text()
    assert (
        "Epoch 2/3" in status and "loss 0.750" in status and "12.5 img/s" in status and "ETA 2m 05s" in status
    )
    assert panel.loss_points == [(1.25, 0.75)]
    assert panel.progress_bar.value() == int(1000 * 1.25 / 3)  # 1.25 of 3 epochs
    per_class = {"background": 0.9, "disk": 0.625, "square": None, "triangle": 0.0}
    panel.handle_event({"event": "val", "epoch": 2, "miou": 0.5, "per_class_iou": per_class})
    table = panel.class_table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows == {"background": "90.0%", "disk": "62.5%", "square": "n/a", "triangle": "0.0%"}
    assert panel.miou_points == [(2.0, 0.5)]
    panel.handle_event(
        {"event": "val", "epoch": 3, "miou": 0.6, "per_class_iou": {"background": 0.95, "disk": 0.25}}
    )
    # the latest epoch replaces the values; every class of the scheme stays listed
    assert table.rowCount() == 4 and table.item(1, 1).text() == "25.0%" and table.item(2, 1).text() == "n/a"


def test_format_duration():
    assert format_duration(None) == "?" == format_duration(float("nan"))
    assert format_duration(5.4) == "5s"
    assert format_duration(125) == "2m 05s"
    assert format_duration(3 * 3600 + 60) == "3h 01m"
    assert format_duration(0.4236, precise=True) == "0.42s" and format_duration(61, precise=True) == "1m 01s"
