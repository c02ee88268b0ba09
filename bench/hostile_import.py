"""Cost of a labelme file that lies about its image size (issue 9: refused from the header).

    .venv/bin/python -m bench.hostile_import

Each case runs `preview_labelme` + `run_import` in a fresh child process on one real CamVid photo
(480x360) whose JSON claims a size; it prints one JSON line per case with the child's peak
resident set size (`ru_maxrss`), the wall time and the outcome. The honest claim is the
reference measured in the same run. Before the check, the 30000x30000 claim allocated a 900 MB
mask and took ~19 s; 100000x100000 tried 9 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTO = sorted(Path("/work/shared/testdata/camvid_sample/images").glob("*.png"))


def child(height: int, width: int) -> None:
    from segstudio.core.errors import SegStudioError
    from segstudio.export.import_common import run_import
    from segstudio.export.labelme_import import preview_labelme

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        (source / "photo.png").write_bytes(PHOTO[0].read_bytes())
        shape = {"label": "road", "shape_type": "polygon", "points": [[10, 10], [450, 20], [240, 350]]}
        doc = {"shapes": [shape], "imagePath": "photo.png", "imageHeight": height, "imageWidth": width}
        (source / "photo.json").write_text(json.dumps(doc))
        started = time.perf_counter()
        try:
            run_import(preview_labelme(source), Path(tmp) / "project")
            outcome = "imported"
        except SegStudioError as error:
            outcome = f"refused: {str(error)[-80:]}"
        seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "bench": "hostile_import",
                "claim": f"{height}x{width}",
                "peak_rss_mb": round(peak_mb),
                "seconds": round(seconds, 3),
                "outcome": outcome,
            }
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    if not PHOTO:
        sys.exit("needs /work/shared/testdata/camvid_sample (a real photo)")
    for height, width in ((360, 480), (30000, 30000), (100000, 100000)):  # the honest claim is the reference
        subprocess.run(
            [sys.executable, "-m", "bench.hostile_import", "--child", str(height), str(width)], check=True
        )


if __name__ == "__main__":
    main()
