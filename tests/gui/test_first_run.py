"""First run: an empty window says what to do, a model-less project names its options, the status bar the real model."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from segstudio.core.project import Project
from segstudio.core.schemes import get_scheme

WAIT = 20_000


def test_empty_start_offers_an_open_folder_button(shown_window, demo_photos, qtbot, monkeypatch):
    window = shown_window()
    assert window.central.currentWidget() is window.welcome and window.welcome.isVisible()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(demo_photos))
    window.welcome.open_button.click()
    assert window.central.currentIndex() == 1 and "Opening" in window.canvas.message.text()
    qtbot.waitUntil(lambda: window.session is not None and window.session.document is not None, timeout=WAIT)
    assert window.central.currentIndex() == 1 and window.canvas.isVisible()
    window.close_project()
    assert window.welcome.isVisible()
    assert [b.text() for b in window.welcome.recent_buttons] == [str(demo_photos.resolve())]


def test_a_project_without_a_model_says_how_to_get_one(shown_window, demo_photos, qtbot):
    with Project.open(
        demo_photos, scheme=get_scheme("cityscapes")
    ) as project:  # no torchvision weights for it
        assert project.active_model_version() is None
    window = shown_window(demo_photos)
    hint = window.model_hint
    assert hint.isVisible() and "No model yet" in hint.text.text()
    assert "none yet" in window.model_status.device_label.text()
    hint.buttons["untrained"].click()  # the same as Model -> Use untrained model
    assert window.model.spec_changes["weights"] == "none"
    assert not hint.isVisible()
    assert "untrained" in window.model_status.device_label.text()


def test_status_bar_names_the_new_projects_model_after_switching(shown_window, demo_photos, tmp_path, qtbot):
    window = shown_window(demo_photos)
    window.untrained_action.trigger()
    window.model_status.on_model_loaded("arch, UNTRAINED [untrained:arch]", "CPU")  # as the worker reports it
    assert "UNTRAINED" in window.model_status.device_label.text()
    other = tmp_path / "other"
    other.mkdir()
    for photo in list(demo_photos.glob("*.jpg"))[:2]:
        (other / photo.name).write_bytes(photo.read_bytes())
    window.open_folder(other)  # what File -> Import does once it has written the project
    qtbot.waitUntil(
        lambda: window.project is not None and window.project.image_dir == other.resolve(), timeout=WAIT
    )
    label = window.model_status.device_label.text()
    assert "UNTRAINED" not in label and "untrained" not in label and "not loaded yet" in label


def test_an_empty_folder_says_what_to_do(shown_window, tmp_path, qtbot):
    empty = tmp_path / "empty"
    empty.mkdir()
    window = shown_window()
    window.open_folder(empty)
    qtbot.waitUntil(lambda: window.project is not None, timeout=WAIT)
    assert "no images yet" in window.canvas.message.text()


def test_a_folder_that_cannot_be_opened_goes_back_to_the_welcome_page(shown_window, tmp_path, qtbot):
    window = shown_window()
    window.open_folder(tmp_path / "does-not-exist")
    qtbot.waitUntil(lambda: window.central.currentIndex() == 0, timeout=WAIT)
    assert window.project is None and "does-not-exist" in (getattr(window, "last_error", "") or "")
