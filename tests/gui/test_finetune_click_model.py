"""The fine-tune window's *Click model* tick: off for a handful of done images, on by default from
CLICK_MODEL_MIN_DONE, and what the user ticks reaches the trainer's settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from segstudio.core.project import Project, Status
from segstudio.core.schemes import LabelScheme
from segstudio.gui.finetune_panel import CLICK_MODEL_MIN_DONE, FinetunePanel
from segstudio.ml.synthetic import make_shapes_dataset, shapes_scheme_dict


def _project(tmp_path, done: int) -> Project:
    folder = tmp_path / "photos"
    folder.mkdir()
    images, masks = make_shapes_dataset(done, 32, seed=3)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"img{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    project = Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict()))
    project.set_setting("val_fraction", 0.0)
    for rec in project.images():
        project.save_mask(rec, masks[int(rec.rel_path[3:5])], status=Status.DONE)
    return project


def _tick(qtbot, panel: FinetunePanel) -> None:
    box = panel.click_model_check
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))


def test_click_model_tick_follows_the_done_count_until_the_user_chooses(qtbot, tmp_path):
    project = _project(tmp_path, 4)
    try:
        panel = FinetunePanel(project)
        qtbot.addWidget(panel)
        panel.show()
        assert not panel.click_model_check.isChecked() and panel.settings()["click_model"] is False
        _tick(qtbot, panel)
        assert panel.settings()["click_model"] is True
        panel.refresh()  # the user's choice is kept over the default
        assert panel.click_model_check.isChecked()
    finally:
        project.close()


def test_click_model_tick_is_on_by_default_with_enough_done_images(qtbot, tmp_path):
    project = _project(tmp_path, CLICK_MODEL_MIN_DONE)
    try:
        panel = FinetunePanel(project)
        qtbot.addWidget(panel)
        assert panel.click_model_check.isChecked() and panel.settings()["click_model"] is True
    finally:
        project.close()


@pytest.mark.slow
def test_a_click_model_that_cannot_train_is_a_note_under_the_kept_version(qtbot, tmp_path):
    """Done masks whose labelled regions are all specks (under the click model's 0.2 % of the frame): the
    segmentation model trains and is kept as a version, and the result says why it has no click model."""
    project = _project(tmp_path, 6)
    try:
        specks = np.full((32, 32), 255, np.uint8)
        specks[4, 4], specks[20, 9], specks[27, 27] = 0, 1, 2  # one pixel each: 0.1 % of the frame
        for rec in project.images():
            project.save_mask(rec, specks, status=Status.DONE)
        panel = FinetunePanel(project)
        qtbot.addWidget(panel)
        panel.extra_settings = {"workers": 0, "min_iters_per_epoch": 2, "device": "cpu", "patience": 0}
        panel.extra_settings["arch"] = "lraspp_mobilenet_v3_large"
        panel.epochs_spin.setValue(1)
        panel.crop_spin.setValue(32)
        panel.batch_spin.setValue(2)
        panel.show()
        if not panel.click_model_check.isChecked():
            _tick(qtbot, panel)
        with qtbot.waitSignal(panel.training_finished, timeout=300_000) as finished:
            qtbot.mouseClick(panel.fine_tune_button, Qt.MouseButton.LeftButton)
        assert finished.args == ["completed"], panel.status_label.text()
        assert panel.new_version == "v1"
        assert not (project.get_model_version("v1").checkpoint_path.parent / "click_model.pt").exists()
        text = panel.result_label.text()
        assert "Note: this version has no click model" in text and "smaller than 0.2% of its frame" in text
    finally:
        project.close()
