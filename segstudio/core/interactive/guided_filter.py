"""The guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010): edge-aware smoothing of
a map by an image, in O(1) per pixel whatever the radius.

Why here: the click model predicts on a 96 px crop, so on a frame-wide object each crop pixel is
~6 frame pixels and its boundary is that coarse; the segmentation model's region it starts from is
upsampled from a coarse output too. Filtering the answer's frame-resolution logits with the frame
as guide moves the boundary onto the image's edges (measured in docs/click-model.md, *Boundary at
the frame's resolution*: NoC@85 / @90 6.5 / 10.0 -> 5.3 / 9.0 on 26 CamVid val frames, the
pre-annotated route no worse). OpenCV has it only in the contrib modules (`cv2.ximgproc`), which
`opencv-python-headless` does not ship; the filter is six box filters, so it is written here on
`cv2.boxFilter` rather than swapping the OpenCV wheel for one function.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["GUIDE_CROP_PIXELS", "GUIDE_EPS", "GUIDE_RADIUS", "grey_guide", "guide_radius", "guided_filter"]

#: the window radius in crop pixels: the crop's boundary is uncertain by about its pixel, so the
#: filter looks two crop pixels (`scale` frame pixels each) either side of it
GUIDE_CROP_PIXELS = 2.0
#: ... and at most this fraction of the frame's long side (8 px on a 480 x 360 CamVid frame; fixed
#: radii 2 / 4 / 6 / 8 / 12 / 16 px measured there, 8 best for NoC, but a fixed 8 px smoothed away
#: small objects' detail and cost the pre-annotated route actions: docs/click-model.md)
GUIDE_RADIUS = 1 / 60
#: the regulariser: an edge weaker than about sqrt(eps) in grey level (0..1) is smoothed over
#: (0.001 / 0.003 / 0.01 / 0.03 measured, 0.01 best; 100 = a plain box blur, worse at NoC@90)
GUIDE_EPS = 0.01


def grey_guide(image: np.ndarray) -> np.ndarray:
    """The guide: the frame's grey levels, float32 in [0, 1] (H x W x 3 or H x W uint8 in)."""
    grey = (
        image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    )
    return grey.astype(np.float32) / 255.0


def guide_radius(shape: tuple[int, int], scale: float) -> int:
    """The filter radius in frame pixels for a crop of `scale` frame pixels per crop pixel."""
    most = max(1, int(round(GUIDE_RADIUS * max(shape))))
    return min(max(1, int(round(GUIDE_CROP_PIXELS * scale))), most)


def guided_filter(guide: np.ndarray, values: np.ndarray, radius: int, eps: float = GUIDE_EPS) -> np.ndarray:
    """`values` (float32, the guide's size) smoothed within `radius`, keeping the guide's edges: in each
    window the output is a linear function of the guide, fitted to `values` by least squares."""

    def mean(a: np.ndarray) -> np.ndarray:
        side = 2 * radius + 1
        return cv2.boxFilter(a, cv2.CV_32F, (side, side), normalize=True, borderType=cv2.BORDER_REFLECT)

    guide = guide.astype(np.float32, copy=False)
    values = values.astype(np.float32, copy=False)
    mean_g, mean_v = mean(guide), mean(values)
    covariance = mean(guide * values) - mean_g * mean_v
    variance = mean(guide * guide) - mean_g * mean_g
    a = covariance / (variance + eps)
    b = mean_v - a * mean_g
    return mean(a) * guide + mean(b)
