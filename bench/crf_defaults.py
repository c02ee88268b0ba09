"""Which CRF settings help a new project before any tuning: candidates scored on real photos with truth.

    .venv/bin/python -m bench.crf_defaults            # CamVid sample (24 frames) + VOC photos (3)

Probabilities are DCNN-like maps made from the truth (`ml.coarse`: stride 8, blurred, logit gain,
noise) in two variants: "sharp" (blur 1.5 at stride 8, gain 8) and "coarse" (blur 3, gain 4), i.e. a
good and a weak network. Each candidate runs at the default (fast) resolution. Prints one JSON line per
dataset x variant x candidate: mIoU and boundary accuracy (5 px band) and their change vs no CRF.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.ml.coarse import coarse_probabilities
from segstudio.ml.crf import CRFParams
from segstudio.ml.crf_tune import TuneSample, score

TESTDATA = Path("/work/shared/testdata")
CANDIDATES: dict[str, CRFParams | None] = {
    "no_crf": None,
    "pydensecrf_example": CRFParams(
        bilateral_sxy=80,
        bilateral_srgb=13,
        bilateral_compat=10,
        gaussian_sxy=3,
        gaussian_compat=3,
        iterations=5,
    ),
    "deeplab_v2_resnet101": CRFParams(
        bilateral_sxy=67,
        bilateral_srgb=3,
        bilateral_compat=4,
        gaussian_sxy=1,
        gaussian_compat=3,
        iterations=10,
    ),
    "deeplab_v1_largefov": CRFParams(
        bilateral_sxy=121,
        bilateral_srgb=5,
        bilateral_compat=4,
        gaussian_sxy=3,
        gaussian_compat=3,
        iterations=10,
    ),
    "narrow_20_3_5": CRFParams(
        bilateral_sxy=20,
        bilateral_srgb=3,
        bilateral_compat=5,
        gaussian_sxy=3,
        gaussian_compat=3,
        iterations=5,
    ),
}
VARIANTS = {"sharp": {"blur": 1.5, "gain": 8.0}, "coarse": {"blur": 3.0, "gain": 4.0}}


def camvid(limit: int) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], int]:
    folder = TESTDATA / "camvid_sample"
    classes = len(json.loads((folder / "scheme.json").read_text())["classes"])
    items = [
        (p.stem, np.array(Image.open(p).convert("RGB")), np.array(Image.open(folder / "masks" / p.name)))
        for p in sorted((folder / "images").glob("*.png"))[:limit]
    ]
    return items, classes


def voc() -> tuple[list[tuple[str, np.ndarray, np.ndarray]], int]:
    folder = TESTDATA / "labelme_voc_example"
    items = [
        (
            p.stem,
            np.array(Image.open(p).convert("RGB")),
            np.array(
                Image.open(folder / "expected_voc" / "SegmentationClass" / f"{p.stem}.png").convert("P")
            ),
        )
        for p in sorted((folder / "data_annotated").glob("*.jpg"))
    ]
    return items, 21


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args(argv)
    for dataset, (items, classes) in (("camvid", camvid(args.frames)), ("voc", voc())):
        for variant, options in VARIANTS.items():
            samples = [
                TuneSample(name, image, coarse_probabilities(truth, classes, seed=i, **options), truth)
                for i, (name, image, truth) in enumerate(items)
            ]
            base = score(samples, None, classes)
            for name, params in CANDIDATES.items():
                result = base if params is None else score(samples, params, classes)
                print(
                    json.dumps(
                        {
                            "bench": "crf_defaults",
                            "dataset": dataset,
                            "variant": variant,
                            "candidate": name,
                            "images": len(samples),
                            "miou": result.miou,
                            "boundary_accuracy": result.boundary_accuracy,
                            "delta_miou": round(result.miou - base.miou, 4),
                            "delta_boundary": round(result.boundary_accuracy - base.boundary_accuracy, 4),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
