"""Export throughput (images/s) per format at 500x375 and 2048x1024.

Run: `.venv/bin/python -m bench.export [--repeats 3] [--small 12] [--large 4] [--formats voc,cityscapes]`
(`--formats coco,masks,yolo` for the others; camvid shares the mask folder's writer).

Each line is JSON: the median over repeats of a full export (fresh folder; atomic staging,
palette/label PNGs, image copy or PNG encode, polygons, manifest), the median of a re-export
where nothing changed (incremental: hard links only), and, as a reference measured in the same
run on the same data, a plain `PIL.Image.save` of each mask as a PNG (the least any exporter
must do per image) and of each source JPEG re-saved as PNG (what any Cityscapes exporter must
add, since leftImg8bit images are PNGs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata

from segstudio.core.schemes import cityscapes_scheme
from segstudio.export.common import ExportItem
from segstudio.export.engine import run_export
from segstudio.export.registry import create_format

SIZES = {"500x375": (375, 500), "2048x1024": (1024, 2048)}


def synthetic_mask(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Street-scene-like layout with several classes, holes and multiple components."""
    rng = np.random.default_rng(seed)
    h, w = shape
    mask = np.full(shape, 10, dtype=np.uint8)  # sky
    mask[h // 2 :] = 0  # road
    mask[h // 3 : h // 2, :] = 2  # building band
    for _ in range(8):
        x, y = int(rng.integers(0, w)), int(rng.integers(h // 2, h))
        cv2.ellipse(
            mask,
            (x, y),
            (int(rng.integers(w // 40, w // 12)), int(rng.integers(h // 40, h // 16))),
            0,
            0,
            360,
            13,
            -1,
        )
    for _ in range(6):
        x, y = int(rng.integers(0, w)), int(rng.integers(h // 3, h))
        cv2.rectangle(mask, (x, y), (x + w // 60, y + h // 8), 11, -1)
    cv2.circle(mask, (w // 2, h // 4), h // 10, 8, -1)
    cv2.circle(mask, (w // 2, h // 4), h // 20, 255, -1)  # a hole
    mask[:, : max(2, w // 200)] = 255
    return mask


def make_items(folder: Path, shape: tuple[int, int], count: int) -> tuple[list[ExportItem], list[np.ndarray]]:
    photo = cv2.resize(skdata.astronaut(), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    items, masks = [], []
    for i in range(count):
        path = folder / f"img_{i:04d}.jpg"
        Image.fromarray(np.roll(photo, i * 7, axis=1)).save(path, quality=90)
        mask = synthetic_mask(shape, i)
        masks.append(mask)
        items.append(
            ExportItem(
                path.name, path, "val" if i % 4 == 0 else "train", (lambda m=mask: m), content_hash=f"h{i}"
            )
        )
    return items, masks


def time_export(fmt_name: str, items: list[ExportItem], root: Path) -> tuple[float, float]:
    fmt = create_format(fmt_name, cityscapes_scheme(), project_name="bench")
    out = root / f"out_{fmt_name}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run_export(fmt, items, out)
    full = time.perf_counter() - start
    start = time.perf_counter()
    report = run_export(fmt, items, out)
    incremental = time.perf_counter() - start
    assert report.reused == len(items)
    return len(items) / full, len(items) / incremental


def time_reference(masks: list[np.ndarray], root: Path) -> float:
    ref = root / "ref"
    ref.mkdir(exist_ok=True)
    start = time.perf_counter()
    for i, mask in enumerate(masks):
        Image.fromarray(mask).save(ref / f"{i}.png")
    return len(masks) / (time.perf_counter() - start)


def time_image_reference(items: list[ExportItem], root: Path) -> float:
    """Decode each source JPEG and save it as PNG with PIL (what any Cityscapes export must do)."""
    ref = root / "ref_img"
    ref.mkdir(exist_ok=True)
    start = time.perf_counter()
    for i, item in enumerate(items):
        with Image.open(item.image_path) as img:
            img.save(ref / f"{i}.png")
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=12, help="images at 500x375")
    parser.add_argument("--large", type=int, default=4, help="images at 2048x1024")
    parser.add_argument("--formats", default="voc,cityscapes", help="comma-separated export formats")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for size, shape in SIZES.items():
            folder = root / size
            folder.mkdir()
            items, masks = make_items(folder, shape, args.small if size == "500x375" else args.large)
            refs = [time_reference(masks, folder) for _ in range(args.repeats)]
            image_refs = [time_image_reference(items, folder) for _ in range(args.repeats)]
            for fmt_name in args.formats.split(","):
                runs = [time_export(fmt_name, items, folder) for _ in range(args.repeats)]
                print(
                    json.dumps(
                        {
                            "bench": "export",
                            "format": fmt_name,
                            "size": size,
                            "images": len(items),
                            "repeats": args.repeats,
                            "median_images_per_s": round(statistics.median(r[0] for r in runs), 2),
                            "median_unchanged_reexport_images_per_s": round(
                                statistics.median(r[1] for r in runs), 2
                            ),
                            "reference_pil_mask_save_images_per_s": round(statistics.median(refs), 2),
                            "reference_pil_image_png_save_images_per_s": round(
                                statistics.median(image_refs), 2
                            ),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
