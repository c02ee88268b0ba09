"""The fine-tune window's *Click model* tick: off for a handful of done images, on by default from
CLICK_MODEL_MIN_DONE, and what the user ticks reaches the trainer's settings."""

from __future__ import annotations

import cv2
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
