"""Validation of one COCO segmentation before pycocotools sees it.

pycocotools is C code that trusts its input: a polygon vertex at 1e9 (or NaN, or 1e15) makes it
allocate and walk gigabytes and then crash the process (SIGSEGV, no message); RLE counts that
are negative overflow, and counts that add up to more than the image write past the mask buffer.
So every segmentation is checked here, with the image size known, and a bad one is an
`ExportError` naming the file, the annotation and what is wrong:

- polygons: lists of an even number (>= 6) of finite numbers, each vertex within one image size
  of the image (the same margin as labelme shapes), at most MAX_VERTICES vertices per
  annotation and a bounded outline length (pycocotools rasterises the outline point by point);
- RLE: `size` equal to the image's, counts non-negative whole numbers adding up to exactly
  height x width; compressed counts are decoded here first (the LEB128-like format of
  pycocotools' `rleFrString`) so the same check applies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segstudio.core.errors import ExportError

__all__ = ["MAX_OUTLINE", "MAX_VERTICES", "check_segmentation", "rle_string_counts"]

#: Vertices per annotation (all its polygons); a hand-drawn or traced object has a few hundred.
MAX_VERTICES = 100_000
#: Outline length in pixels per annotation; pycocotools keeps ~5 points per pixel of outline.
MAX_OUTLINE = 5_000_000


def rle_string_counts(counts: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' `rleFrString`, checked)."""
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts) or shift > 60:
                raise ExportError("its compressed RLE counts end in the middle of a number")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ExportError(f"its compressed RLE counts contain {counts[position]!r}, not an RLE digit")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def _check_counts(counts: list[Any], height: int, width: int) -> None:
    total = 0
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ExportError(f"its RLE counts must be whole numbers >= 0, found {count!r}")
        total += count
    if total != height * width:
        raise ExportError(
            f"its RLE counts cover {total} pixels but the {width}x{height} image has {height * width}"
        )


def _check_polygons(polygons: list[Any], height: int, width: int) -> None:
    vertices = 0
    outline = 0.0
    for polygon in polygons:
        if not isinstance(polygon, list) or any(
            isinstance(v, (bool, list, dict, str)) or v is None for v in polygon
        ):
            raise ExportError("a polygon must be a list of numbers x1, y1, x2, y2, ...")
        if len(polygon) % 2 or len(polygon) < 6:
            raise ExportError(f"a polygon has {len(polygon)} numbers; it needs an even number, at least 6")
        vertices += len(polygon) // 2
        if vertices > MAX_VERTICES:
            raise ExportError(
                f"it has more than {MAX_VERTICES:,} polygon vertices; simplify the polygon before importing"
            )
        try:
            xy = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError, OverflowError):
            raise ExportError("a polygon must be a list of numbers x1, y1, x2, y2, ...") from None
        if not np.isfinite(xy).all():
            raise ExportError("a polygon has a NaN or infinite coordinate")
        x, y = xy[:, 0], xy[:, 1]
        if x.min() < -width or x.max() > 2 * width or y.min() < -height or y.max() > 2 * height:
            raise ExportError(
                f"a polygon vertex lies far outside the {width}x{height} image "
                f"(x {x.min():g}..{x.max():g}, y {y.min():g}..{y.max():g}); fix the polygon"
            )
        outline += float(np.abs(np.diff(xy, axis=0, append=xy[:1])).max(axis=1).sum())
    if outline > MAX_OUTLINE:
        raise ExportError(
            f"its polygons' outline is {outline:,.0f} pixels long (at most {MAX_OUTLINE:,}); simplify them"
        )


def check_segmentation(segmentation: Any, height: int, width: int) -> None:
    """ExportError (message without the file: the caller adds it) unless pycocotools can take it safely."""
    if isinstance(segmentation, list):
        _check_polygons(segmentation, height, width)
        return
    if not isinstance(segmentation, dict) or "counts" not in segmentation:
        shown = str(type(segmentation).__name__)
        raise ExportError(f"unsupported segmentation ({shown}); expected a list of polygons or an RLE object")
    size = segmentation.get("size")
    if not isinstance(size, list) or size != [height, width] or any(isinstance(v, bool) for v in size):
        raise ExportError(f"its RLE size {str(size)[:40]} does not match its {height}x{width} image")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        _check_counts(counts, height, width)
    elif isinstance(counts, str):
        _check_counts(rle_string_counts(counts), height, width)
    else:
        raise ExportError(f"its RLE counts must be a list or a string, not {type(counts).__name__}")
