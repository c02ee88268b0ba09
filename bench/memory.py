"""Peak memory of prediction + CRF + stored probabilities on a huge image (the issue-9 bound: < 2 GB).

    .venv/bin/python -m bench.memory                      # 12000x12000, default CRF
    .venv/bin/python -m bench.memory --side 8000 --crf '{"scale": 1, "max_pixels": 4000000}'

Each case runs in a fresh child process (so one case's peak cannot hide another's) and reports the
child's peak resident set size (`ru_maxrss`) and what it took: decode-sized RGB image (made by resizing
a CamVid photo, handed over by a loader as a decoder would, like the GUI worker does), a random-init LR-ASPP MobileNetV3 with 19 classes
(weights do not change memory), `Predictor` with the CRF and the coarse probabilities the project
stores, then quantisation for storage. Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

TESTDATA = Path("/work/shared/testdata/camvid_sample/images")


def child(side: int, crf_json: str) -> None:
    import cv2
    import numpy as np
    import torch
    from PIL import Image

    from segstudio.core.probabilities import quantise
    from segstudio.ml.crf import CRFParams
    from segstudio.ml.models import build_model
    from segstudio.ml.predict import Predictor

    torch.manual_seed(0)
    torch.set_num_threads(1)
    photo = np.array(Image.open(sorted(TESTDATA.glob("*.png"))[0]).convert("RGB"))
    model = build_model("lraspp_mobilenet_v3_large", 19, aux_loss=False)
    crf = CRFParams.from_dict(json.loads(crf_json)) if crf_json != "off" else None
    predictor = Predictor(model, "cpu", precision="float32", crf=crf, coarse_probabilities=True)
    t0 = time.perf_counter()
    # a loader, as the GUI worker passes one: the predictor keeps only the small copies it needs
    result = predictor.predict(lambda: cv2.resize(photo, (side, side), interpolation=cv2.INTER_LINEAR))
    stored = quantise(result.coarse)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "bench": "memory",
                "size": f"{side}x{side}",
                "crf": crf_json,
                "peak_rss_mb": round(peak_mb),
                "image_mb": round(side * side * 3 / 2**20),
                "seconds": round(seconds, 1),
                "stored_probabilities_kb": round(stored.nbytes / 1024),
                "timings": {k: round(v, 2) for k, v in result.timings.items()},
            }
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument(
        "--crf", action="append", help="CRF settings as JSON, or 'off' (repeatable; default '{}')"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.side, args.crf[0])
        return
    for crf_json in args.crf or ["{}"]:
        subprocess.run(
            [sys.executable, "-m", "bench.memory", "--child", "--side", str(args.side), "--crf", crf_json],
            check=True,
        )


if __name__ == "__main__":
    main()
