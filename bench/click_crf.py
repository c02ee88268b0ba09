"""Latency and quality of the ``crf`` smart-click engine (issue 10: within the 100 ms click budget).

    .venv/bin/python -m bench.click_crf                  # 3 VOC photos + 4 CamVid frames, 5 objects each
    .venv/bin/python -m bench.click_crf --clicks 5 --camvid 8

Per photo: DCNN-like probabilities from the truth (`ml.coarse`, the "coarse" variant: logit gain 4,
blur 3, so the clicks have something to fix), then the NoC protocol of `core.interactive.robot`
(click the larger error of each object, up to --clicks) on the largest objects. Every `region()` call
is timed. The same run measures, as references, the engine as it was before the local reduced grid
(`legacy`: the proposal's box at a fixed half resolution, lowered to keep 16 384 grid pixels on
small windows) and the
superpixel engine that proposes the object (`superpixel`: a floor for any crf click).
Prints one JSON line per engine: latency median / p90 (ms) and mean IoU after 1 and after --clicks clicks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.interactive import create_engine
from segstudio.core.interactive.robot import object_clicks
from segstudio.ml.coarse import coarse_probabilities

TESTDATA = Path("/work/shared/testdata")


def photos(camvid: int) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    voc = TESTDATA / "labelme_voc_example"
    out = []
    for path in sorted((voc / "data_annotated").glob("*.jpg")):
        truth = np.array(
            Image.open(voc / "expected_voc" / "SegmentationClass" / f"{path.stem}.png").convert("P")
        )
        out.append((path.stem, np.array(Image.open(path).convert("RGB")), truth, 21))
    cam = TESTDATA / "camvid_sample"
    for path in sorted((cam / "images").glob("*.png"))[::6][:camvid]:
        out.append(
            (
                path.stem,
                np.array(Image.open(path).convert("RGB")),
                np.array(Image.open(cam / "masks" / path.name)),
                11,
            )
        )
    return out


def largest_objects(truth: np.ndarray, most: int) -> list[tuple[int, np.ndarray]]:
    import cv2

    found = []
    for c in np.unique(truth):
        if c == 255:
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats((truth == c).view(np.uint8), connectivity=8)
        found += [
            (int(stats[k, cv2.CC_STAT_AREA]), int(c), comp == k)
            for k in range(1, count)
            if stats[k, cv2.CC_STAT_AREA] >= 0.005 * truth.size
        ]
    found.sort(key=lambda f: -f[0])
    return [(c, m) for _, c, m in found[:most]]


def run(name: str, items: list, clicks: int, objects: int) -> dict:
    import segstudio.ml.interactive_crf  # noqa: F401  (registers "crf")

    latency, first, last = [], [], []
    for _, image, truth, classes in items:
        probs = coarse_probabilities(truth, classes, gain=4.0, blur=3.0)
        engine = create_engine("superpixel" if name == "superpixel" else "crf")
        if name == "legacy":
            engine.grid_pixels = None  # the former fixed half-resolution window
        engine.prepare(image, probs) if name != "superpixel" else engine.prepare(image)
        real = engine.region

        def timed(*args, real=real, **kwargs):
            t0 = time.perf_counter()
            out = real(*args, **kwargs)
            latency.append(time.perf_counter() - t0)
            return out

        engine.region = timed
        for cls, mask in largest_objects(truth, objects):
            ious = object_clicks(engine, mask, cls, clicks)
            first.append(ious[0])
            last.append(ious[-1])
    ms = sorted(1000 * t for t in latency)
    return {
        "bench": "click_crf",
        "engine": name,
        "photos": len(items),
        "clicks": len(ms),
        "latency_median_ms": round(statistics.median(ms), 1),
        "latency_p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
        "iou_after_1": round(float(np.mean(first)), 3),
        f"iou_after_{clicks}": round(float(np.mean(last)), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=3, help="clicks per object (NoC protocol)")
    parser.add_argument("--objects", type=int, default=5, help="largest objects per photo")
    parser.add_argument(
        "--camvid", type=int, default=4, help="CamVid frames (480x360), besides the 3 VOC photos"
    )
    parser.add_argument("--engines", default="crf,legacy,superpixel")
    args = parser.parse_args(argv)
    items = photos(args.camvid)
    for subset, chosen in (
        ("voc", [i for i in items if i[3] == 21]),
        ("camvid", [i for i in items if i[3] == 11]),
    ):
        for name in args.engines.split(","):
            print(json.dumps({"set": subset, **run(name, chosen, args.clicks, args.objects)}), flush=True)


if __name__ == "__main__":
    main()
