"""Check a SegStudio YOLO export with Ultralytics' own dataset code, against a mask-folder export.

Not a pytest test: Ultralytics cannot live in SegStudio's environment (it requires `opencv-python`,
whose bundled Qt clashes with PySide6, next to our `opencv-python-headless`). It runs in its own
venv that borrows SegStudio's torch and OpenCV through a .pth file, so nothing large is downloaded:

    python3 -m venv /tmp/ul && /tmp/ul/bin/pip install --no-deps ultralytics==8.4.190 pyyaml psutil
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/ul/lib/python3.11/site-packages/zz_segstudio.pth
    segstudio export PROJECT --format yolo  --out /tmp/ex/yolo  --include mask    # in SegStudio's env
    segstudio export PROJECT --format masks --out /tmp/ex/masks --include mask
    YOLO_CONFIG_DIR=/tmp/ul-cfg /tmp/ul/bin/python tests/external/ultralytics_reads_yolo.py /tmp/ex/yolo /tmp/ex/masks

It runs `check_det_dataset` on data.yaml, loads both splits with `YOLODataset(task="segment")`
(which runs `verify_image_label` on every file and reports corrupt ones), then paints each image's
segments as Ultralytics parsed them with its own `polygon2mask` at full resolution, in file order,
and compares with the mask-folder export of the same project. Prints one JSON line; exit status 1
on a corrupt label, a missing image, or more than 0.1% of an image's pixels differing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main(yolo_root: str, masks_root: str) -> int:
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset, polygon2mask

    data = check_det_dataset(str(Path(yolo_root) / "data.yaml"))
    report: dict[str, object] = {"nc": data["nc"], "names": list(data["names"].values())}
    worst, differing, total, images, instances = 0.0, 0, 0, 0, 0
    for split in ("train", "val"):
        dataset = YOLODataset(img_path=data[split], data=data, task="segment", augment=False, imgsz=640)
        for label in dataset.labels:
            images += 1
            h, w = label["shape"]
            stem = Path(label["im_file"]).stem
            expected = np.array(Image.open(Path(masks_root) / "masks" / f"{stem}.png"))
            painted = np.full((h, w), 255, dtype=np.uint8)
            for cls, segment in zip(label["cls"].reshape(-1), label["segments"]):
                instances += 1
                area = polygon2mask((h, w), [segment * np.array([w, h])], color=1).astype(bool)
                painted[area] = int(cls)
            wrong = int((painted != expected).sum())
            differing += wrong
            total += expected.size
            worst = max(worst, wrong / expected.size)
    report.update(images=images, instances=instances, pixels_differing=differing / max(total, 1), worst_image=worst)
    report["ok"] = images > 0 and worst <= 0.001
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
