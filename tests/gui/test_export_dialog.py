"""Export and import dialogs: run in a worker thread, report progress, cancel, show the mapping first."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from segstudio.core.project import Project, Status
from segstudio.core.schemes import voc_scheme
from segstudio.gui import export_dialog as export_dialog_module
from segstudio.gui.export_dialog import ExportDialog
from segstudio.gui.import_dialog import ImportDialog

TIMEOUT = 60_000


@pytest.fixture
def project(tmp_path):
    from skimage import data

    images = tmp_path / "images"
    images.mkdir()
    for name, photo in (("cat.png", data.chelsea()), ("astronaut.jpg", data.astronaut())):
        Image.fromarray(photo).resize((80, 60)).save(images / name)
    proj = Project.open(images, scheme=voc_scheme())
    for rec in proj.images():
        mask = np.zeros(rec.shape, dtype=np.uint8)
        cv2.circle(mask, (40, 30), 12, 8, -1)
        proj.save_mask(rec, mask, status=Status.DONE)
    yield proj
    proj.close()


def test_export_runs_in_thread_and_reports(qtbot, project, tmp_path):
    dialog = ExportDialog(project)
    qtbot.addWidget(dialog)
    out = tmp_path / "export"
    dialog.out_edit.setText(str(out))
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("coco"))
    assert not dialog.void_band.isEnabled()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("voc"))
    assert dialog.void_band.isEnabled()
    with qtbot.waitSignal(dialog.export_finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.export_button, qtbot_button())
    report = blocker.args[0]
    assert report.exported == 2
    assert (out / "VOCdevkit" / "VOC2012" / "SegmentationClass").is_dir()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.progress.value() == dialog.progress.maximum() == 2
    assert "Exported 2 images" in dialog.status_label.text()
    assert dialog.export_button.isEnabled()


def test_check_lists_problems_and_failed_export_is_shown(qtbot, project, tmp_path):
    dialog = ExportDialog(project)
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("cityscapes"))
    dialog.run_check()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert "no Cityscapes label" in dialog.problems.toPlainText()
    assert "1 error" in dialog.status_label.text()
    dialog.out_edit.setText(str(tmp_path / "cs"))
    dialog.start_export()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert "aeroplane" in dialog.problems.toPlainText()
    assert not (tmp_path / "cs").exists()


def test_cancel_stops_the_worker(qtbot, project, tmp_path, monkeypatch):
    started = threading.Event()

    def slow_export(project, fmt, out, options, handle, check=None):
        started.set()
        while True:  # until the dialog cancels
            handle.check_cancelled()
            threading.Event().wait(0.01)

    monkeypatch.setattr(export_dialog_module.project_export, "export_project", slow_export)
    dialog = ExportDialog(project)
    qtbot.addWidget(dialog)
    dialog.out_edit.setText(str(tmp_path / "never"))
    dialog.start_export()
    assert dialog.is_running() and dialog.cancel_button.text() == "Cancel"
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    qtbot.mouseClick(dialog.cancel_button, qtbot_button())
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert "Cancelled" in dialog.status_label.text()
    assert dialog.cancel_button.text() == "Close"


def test_import_dialog_shows_mapping_before_writing(qtbot, labelme_example, tmp_path):
    dialog = ImportDialog()
    qtbot.addWidget(dialog)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("labelme"))
    dialog.source_edit.setText(str(labelme_example / "data_annotated"))
    target = tmp_path / "imported"
    dialog.target_edit.setText(str(target))
    assert not dialog.import_button.isEnabled()
    dialog.run_preview()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    sources = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    targets = [dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())]
    assert "person" in sources and targets[sources.index("__ignore__")] == "void (255)"
    assert targets[sources.index("person")] == "15 person"  # VOC index and name, as the CLI preview shows
    assert not target.exists()  # nothing written by the preview
    assert dialog.import_button.isEnabled()
    with qtbot.waitSignal(dialog.project_imported, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.import_button, qtbot_button())
    assert blocker.args == [str(target)]
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    with Project.open(target) as proj:
        assert proj.counts()[Status.DONE] == 3


def test_import_dialog_blocks_unmapped_labels(qtbot, labelme_example):
    dialog = ImportDialog()
    qtbot.addWidget(dialog)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("labelme"))
    dialog.scheme_combo.setCurrentIndex(dialog.scheme_combo.findData("cityscapes"))
    dialog.source_edit.setText(str(labelme_example / "data_annotated"))
    dialog.run_preview()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert "Unmapped labels" in dialog.summary.text() and "bottle" in dialog.summary.text()
    assert not dialog.import_button.isEnabled()


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_import_dialog_in_place(qtbot, labelme_example, tmp_path):
    import shutil

    folder = tmp_path / "annotated"
    shutil.copytree(labelme_example / "data_annotated", folder)
    shutil.copy(
        labelme_example / "labels.txt", tmp_path / "labels.txt"
    )  # labels.txt in the parent, as in labelme's example
    folder.chmod(0o755)
    dialog = ImportDialog()
    qtbot.addWidget(dialog)
    dialog.source_edit.setText(str(folder))
    assert not dialog.in_place_check.isEnabled()
    dialog.run_preview()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.in_place_check.isEnabled()
    dialog.in_place_check.setChecked(True)
    assert not dialog.target_edit.isEnabled()
    with qtbot.waitSignal(dialog.project_imported, timeout=TIMEOUT) as blocker:
        dialog.start_import()
    assert blocker.args == [str(folder)]
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    with Project.open(folder) as proj:
        assert proj.counts()[Status.DONE] == 3
        assert proj.scheme.names[15] == "person"


def test_dialogs_list_every_registered_format_and_the_colour_option(qtbot, project, tmp_path):
    from segstudio.export.registry import available_formats, available_importers

    dialog = ExportDialog(project)
    qtbot.addWidget(dialog)
    assert [
        dialog.format_combo.itemData(i) for i in range(dialog.format_combo.count())
    ] == available_formats()
    dialog.format_combo.setCurrentIndex(available_formats().index("masks"))
    assert dialog.color_check.isEnabled()
    dialog.color_check.setChecked(True)
    assert dialog.options().color_masks
    dialog.format_combo.setCurrentIndex(available_formats().index("voc"))
    assert not dialog.color_check.isEnabled() and not dialog.options().color_masks
    importer = ImportDialog()
    qtbot.addWidget(importer)
    assert sorted(importer.kind_combo.itemData(i) for i in range(importer.kind_combo.count())) == sorted(
        available_importers()
    )


def test_import_dialog_refuses_escaping_paths_unless_allowed(qtbot, tmp_path):
    import json

    import numpy as np
    from PIL import Image

    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(outside)
    source = tmp_path / "src"
    source.mkdir()
    shape = {"label": "x", "shape_type": "rectangle", "points": [[1, 1], [5, 5]]}
    (source / "a.json").write_text(
        json.dumps({"shapes": [shape], "imagePath": str(outside), "imageHeight": 8, "imageWidth": 8})
    )
    dialog = ImportDialog()
    qtbot.addWidget(dialog)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("labelme"))
    dialog.source_edit.setText(str(source))
    dialog.run_preview()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert "imagePath refused" in dialog.summary.text() and not dialog.import_button.isEnabled()
    dialog.outside_check.setChecked(True)  # a trusted dataset: read it where it is
    dialog.run_preview()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.plan is not None and [s.image_path for s in dialog.plan.samples] == [outside]
    assert dialog.import_button.isEnabled()
