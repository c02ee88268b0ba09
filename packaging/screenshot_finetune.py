"""The README's fine-tune window screenshot, from a real run under Xvfb:

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python packaging/screenshot_finetune.py \
        /work/shared/testdata/camvid_sample resources/

Copies 16 CamVid frames with their masks into a temporary project (all marked done), opens
Train > Fine-tune over the main window, presses Fine-tune (a small LR-ASPP MobileNetV3 from scratch,
a few epochs at a reduced size so it finishes on a CPU) and saves `screenshot_finetune.png` when the
run has finished: live curves, per-class IoU, the ± of the estimates and the before/after result.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from shots import save_png, settle

FRAMES = 16
ARCH = "lraspp_mobilenet_v3_large"
SETTINGS = {"workers": 0, "min_iters_per_epoch": 8, "max_side": 240, "patience": 0, "device": "cpu"}


def _project(data: Path, work: Path):
    import json

    import numpy as np
    from PIL import Image

    from segstudio.core.project import Project, Status
    from segstudio.core.schemes import LabelScheme

    folder = work / "camvid"
    folder.mkdir()
    for image in sorted((data / "images").glob("*.png"))[:FRAMES]:
        shutil.copy2(image, folder / image.name)
    scheme = LabelScheme.from_dict(json.loads((data / "scheme.json").read_text()))
    project = Project.open(folder, scheme=scheme)
    for rec in project.images():
        project.save_mask(rec, np.array(Image.open(data / "masks" / rec.rel_path)), status=Status.DONE)
    return project


def main(data: str, out_dir: str) -> int:
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.finetune_panel import FinetunePanel
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(data), Path(tmp))
        window = MainWindow(AppSettings())
        window.resize(1480, 900)
        window.show()
        panel = FinetunePanel(project, window)
        panel.extra_settings = dict(SETTINGS)
        panel.arch_combo.setCurrentText(ARCH)  # shown as chosen, and what the run trains
        panel.epochs_spin.setValue(6)
        panel.crop_spin.setValue(192)
        panel.lr_spin.setValue(0.02)
        panel.show()
        panel.start()
        deadline = time.monotonic() + 1800
        while panel.finish_reason is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.05)
        settle(app, 0.8)
        save_png(panel, Path(out_dir) / "screenshot_finetune.png")
        print(f"run {panel.finish_reason}")
        panel.shutdown()
        project.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
