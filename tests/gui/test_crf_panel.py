"""Model -> CRF: on/off persists in the project, the settings panel saves and resets, tuning runs in the background."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.core.project import Project, Status
from segstudio.gui.crf_panel import CRFPanel
from segstudio.ml.crf import CRFParams, load_params
from segstudio.ml.crf_project import TUNE_REPORT_KEY, project_crf
from segstudio.ml.spec import ModelSpec


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"img{i}.png")
    with Project.open(folder) as opened:
        yield opened


def test_new_project_starts_with_the_crf_off_and_the_panel_turns_it_on(qtbot, project):
    assert project_crf(project) is None and ModelSpec.from_project(project).crf is None
    panel = CRFPanel(project)
    qtbot.addWidget(panel)
    assert not panel.enabled_box.isChecked()
    panel.enabled_box.setChecked(True)
    panel.editors["bilateral_sxy"].setValue(33)
    with qtbot.waitSignal(panel.crf_changed) as blocker:
        panel.save()
    assert blocker.args[0].bilateral_sxy == 33
    assert (
        project_crf(project) == CRFParams(bilateral_sxy=33)
        and ModelSpec.from_project(project).crf is not None
    )
    panel.reset_button.click()
    assert (
        panel.editors["bilateral_sxy"].value() == CRFParams().bilateral_sxy and panel.enabled_box.isChecked()
    )


def test_tuning_without_corrected_images_says_why_and_changes_nothing(qtbot, project):
    panel = CRFPanel(project)
    qtbot.addWidget(panel)
    panel.start_tuning()
    qtbot.waitUntil(lambda: not panel.runner.is_running(), timeout=20_000)
    assert "at least 2" in panel.report_label.text()
    assert project.get_setting(TUNE_REPORT_KEY) is None and load_params(project) == CRFParams()


def test_model_menu_switch_persists(qtbot, tmp_path, project):
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    folder = project.image_dir
    project.close()
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.project is not None, timeout=20_000)
    action = window.crf_actions["crf_on"]
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    assert action.isChecked() and project_crf(window.project) is not None
    window.close()
    with Project.open(folder) as reopened:
        assert project_crf(reopened) is not None
        assert reopened.images(status=Status.DONE) == []


def test_crf_change_message():
    from segstudio.ml.crf_project import crf_change_message

    after = np.zeros((10, 10), np.uint8)
    before = after.copy()
    before[:1] = 1
    assert crf_change_message(after, before) == "CRF changed 10.00 % of this image's pixels"
    assert "without the dense CRF" in crf_change_message(after, None)
