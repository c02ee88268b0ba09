"""The README's screenshot set, taken from the real window under Xvfb:

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python packaging/screenshots.py \
        /work/shared/testdata/camvid_sample MODEL.pt resources/

- `screenshot.png`: the main window after *Model → Pre-annotate all new images* on CamVid frames
  with the given checkpoint (whatever it is: the picture shows what that model predicts), two
  frames marked done.
- `screenshot_problems.png`: the same project with the Problems list open (a truncated file in
  the folder failed during pre-annotation) and the confidence layer with its legend.
- `screenshot_welcome.png`: the first start, no folder open.
- `screenshot_finetune.png`: *Train → Fine-tune…* after a short real run (4 epochs, frozen
  backbone) on the frames marked done, starting from MODEL.

Works on copies in a temporary folder; nothing under the data folder is written. PNGs are
reduced to a 256-colour palette so each stays well under 300 KB.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from shots import save_png as _save
from shots import settle as _settle
from shots import wait_for as _wait

SIZE = (1480, 900)
FRAMES = 12


def _folder(data: Path, work: Path) -> Path:
    """A few CamVid frames plus one truncated copy (its header reads fine, its pixels do not)."""
    images = work / "camvid"
    images.mkdir(parents=True)
    frames = sorted((data / "images").glob("*.png"))[:FRAMES]
    for frame in frames:
        shutil.copy2(frame, images / frame.name)
    blob = frames[-1].read_bytes()
    (images / "0001TP_broken_copy.png").write_bytes(blob[: len(blob) // 3])
    return images


def _finetune(app, window, out: Path) -> None:
    """A short real fine-tuning run from the window (the `segstudio train` child), then its picture."""
    window.finetune_action.trigger()
    panel = window._panels["finetune_panel"]
    panel.epochs_spin.setValue(4)
    panel.crop_spin.setValue(256)
    panel.freeze_check.setChecked(True)
    panel.start()
    _wait(app, lambda: panel.events and not panel.is_running(), 1200, "the fine-tuning run")
    _settle(app, 2.0)
    _save(panel, out / "screenshot_finetune.png")
    panel.close()


def main(data: str, model: str, out_dir: str) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from segstudio.core.project import Project, Status
    from segstudio.core.schemes import LabelScheme
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SEGSTUDIO_SETTINGS_DIR"] = str(Path(tmp) / "settings")
        app = QApplication([])
        welcome = MainWindow(AppSettings())
        welcome.resize(1100, 700)
        welcome.show()
        _settle(app, 0.5)
        _save(welcome, out / "screenshot_welcome.png")
        welcome.close()

        images = _folder(Path(data), Path(tmp))
        with Project.open(images, scheme=LabelScheme.load(Path(data) / "scheme.json")):
            pass
        window = MainWindow(AppSettings())
        window.resize(*SIZE)
        window.show()
        window.open_folder(images)
        _wait(
            app, lambda: window.session is not None and window.session.document is not None, 60, "the folder"
        )
        window.use_weights(weights="file", path=model, version=None)
        window.predict_all_new()

        def pending() -> list[str]:  # new images neither predicted nor listed as a problem
            listed = window.problems.problems()
            return [
                r.rel_path
                for r in window.project.images()
                if r.status == Status.NEW and r.rel_path not in listed
            ]

        _wait(app, lambda: not pending() and bool(window.problems.problems()), 900, "pre-annotation")
        records = [r for r in window.project.images() if r.status == Status.PREDICTED]
        for rec in records[1:5]:  # four frames checked and marked done
            window.open_image(rec.rel_path)
            window.mark(Status.DONE)
        window.open_image(records[4].rel_path)
        window.opacity_slider.setValue(55)
        window.canvas.fit()
        _settle(app, 3.0)
        _save(window, out / "screenshot.png")

        window.actions_by_id["confidence_layer"].setChecked(True)
        window.problems_dock.show()
        window.resizeDocks([window.problems_dock], [150], Qt.Orientation.Vertical)
        window.canvas.fit()
        _settle(app, 2.0)
        _save(window, out / "screenshot_problems.png")
        _finetune(app, window, out)
        window.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
