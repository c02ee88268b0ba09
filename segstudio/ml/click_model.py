"""The learned click model: RITM-style "this object" network over a click-centred zoom-in crop,
started from the project's segmentation model.

Input (one square crop of `CROP` pixels, resampled from the frame by one affine map):
  RGB (3) + positive-click disks + negative-click disks + the object's previous mask
  + the segmentation model's probability of the clicked class (`ml.click_evidence`) = 7 channels.
Output: one logit per crop pixel, "belongs to the object being clicked". The clicked class selects
the probability plane, so one network serves every class of a project.

Why this shape (measured on CamVid, see docs/click-model.md):
- the segmentation model's evidence: a from-scratch click net on ~100 frames has no notion of
  "object" (its first click found IoU 0.01-0.06); the project's own segmentation model has one;
- the first-click *proposal* (the model's connected region of the clicked class under the click,
  `SegEvidence.proposal`) is fed as the previous mask of the first click, so the first answer
  starts from the model's object and the network only has to fix it; where the model has no such
  region (it disagrees with the click: the user is correcting it) the colour region around the
  click stands in (`click_evidence.colour_proposal`);
- the zoom-in crop (RITM's) makes a click cost one small forward pass and shows a small network an
  object at a useful scale;
- the output is a residual on the previous mask (`prior * (2 * prev - 1)` plus a zero-initialised
  head), so an untrained model returns its prior (the previous mask, or the proposal) unchanged.
  At inference the residual is added at the *frame's* resolution (`paste_logits`): where the head
  changes nothing, the previous mask keeps its full-resolution boundary instead of the crop's, and
  the logits are guided-filtered by the frame (`core.interactive.guided_filter`) so the boundary
  (the head's, or the segmentation model's upsampled one) lands on the image's edges.
- FocalClick's focus pass (models trained with `focus`): a corrective click close to the boundary
  is answered again in a small window around it, with the whole-object answer as the previous
  mask, so a boundary sliver is seen at ~1 frame px per crop px instead of ~5 (`focus_window`).
Pure torch + OpenCV; nothing here imports Qt. Checkpoints load with `weights_only=True`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.errors import CheckpointError, UsageError
from segstudio.core.interactive.guided_filter import grey_guide, guide_radius, guided_filter
from segstudio.ml.checkpoint_schema import check_archive
from segstudio.ml.click_evidence import SegEvidence, click_pixel, colour_proposal
from segstudio.ml.click_model_files import CLICK_MODEL_NAME

__all__ = [
    "CHANNELS",
    "CLICK_MODEL_NAME",
    "CROP",
    "OBLONG_CROPS",
    "ClickNet",
    "ClickPredictor",
    "CropWindow",
    "check_frame",
    "crop_window",
    "encode",
    "focus_window",
    "load_click_model",
    "paste_logits",
    "save_click_model",
]

CROP = 96  # network input side (pixels): 96 measured ~2x cheaper than 128 to train on the shared CPU
DISK_RADIUS = 4  # click disk radius in crop pixels (RITM: 5 at 320-480 px crops)
EXPAND = 0.4  # the crop is the bbox of (previous mask + clicks) grown by this fraction on each side
MIN_SIDE = 0.3  # ... and at least this fraction of the frame's long side (the first click's window)
FORMAT = "segstudio-click-model-2"
OLD_FORMATS = ("segstudio-click-model-1",)  # 6 inputs, no segmentation evidence: retrain
CHANNELS = 7  # RGB, positive disks, negative disks, previous mask, p(clicked class)
#: A click model is ~0.5 MB (width 16) and 8 MB at width 64; a file declaring more is not one.
MAX_CLICK_MODEL_BYTES = 64 * 2**20
PREV, SEG = 5, 6  # channel indices
#: new click models train (and then predict) on crops up to 3 : 1, so a long object keeps resolution
#: across it (2 seeds each on 26 CamVid val frames: NoC@85 / @90 6.1 / 9.7 against square crops'
#: 6.6 / 10.2, objects never at 85 % 10 against 16-20); models without it in their info stay square
OBLONG_CROPS = 3.0
#: FocalClick's local refinement: after the whole-object answer, a corrective click near the boundary
#: is answered again in a square window around it, `FOCUS_SPAN` times the click's distance to that
#: boundary, at least `FOCUS_MIN` of the frame's long side, where that is under `FOCUS_MAX` of the
#: whole window's shorter side; only models trained so (`focus` in their info) do it (docs/click-model.md)
FOCUS_SPAN = 8.0
FOCUS_MIN = 0.1
FOCUS_MAX = 0.5


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ClickNet(nn.Module):
    """A small U-Net at half the crop's resolution (a strided stem: CPU cost), 4 levels, whose
    logits (upsampled to the crop) are a residual on the previous-mask channel."""

    def __init__(self, width: int = 16, prior: float = 1.0) -> None:
        super().__init__()
        w = (width, width * 2, width * 3, width * 4)
        self.width = width
        self.stem = _block(CHANNELS, w[0], stride=2)
        self.enc = nn.ModuleList(
            [_block(w[0], w[0]), _block(w[0], w[1]), _block(w[1], w[2]), _block(w[2], w[3])]
        )
        self.up = nn.ModuleList(
            [_block(w[3] + w[2], w[2]), _block(w[2] + w[1], w[1]), _block(w[1] + w[0], w[0])]
        )
        self.head = nn.Conv2d(w[0], 1, 1)
        nn.init.zeros_(self.head.weight)  # untrained: the output is the previous mask (see module doc)
        nn.init.zeros_(self.head.bias)
        self.prior = nn.Parameter(torch.tensor(float(prior)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Crop logits: the head's residual plus the previous mask's term (training's view)."""
        return self.delta(x) + self.prior * (2 * x[:, PREV : PREV + 1] - 1)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The head's residual logits at the crop's size (zero for an untrained model)."""
        skips = []
        h = self.stem(x)
        for i, block in enumerate(self.enc):
            h = block(h if i == 0 else nn.functional.max_pool2d(h, 2))
            skips.append(h)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = nn.functional.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], 1))
        return nn.functional.interpolate(
            self.head(h), size=x.shape[-2:], mode="bilinear", align_corners=False
        )


@dataclass(frozen=True)
class CropWindow:
    """A window of the frame: crop pixel (u, v) = frame pixel (x0 + u * scale, y0 + v * scale_y);
    square unless the model was trained with `max_aspect` > 1 (`scale_y` None: the same as `scale`)."""

    x0: float
    y0: float
    scale: float  # frame pixels per crop pixel (across; down too for a square window)
    scale_y: float | None = None  # frame pixels per crop pixel down, where it differs

    @property
    def sy(self) -> float:
        return self.scale if self.scale_y is None else self.scale_y

    def to_crop(self) -> np.ndarray:
        """2x3 affine map frame -> crop."""
        sx, sy = 1.0 / self.scale, 1.0 / self.sy
        return np.array([[sx, 0, -self.x0 * sx], [0, sy, -self.y0 * sy]], np.float64)

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) / self.scale, (y - self.y0) / self.sy


def check_frame(image: np.ndarray, what: str = "the click model") -> None:
    """UsageError unless `image` is an H x W x 3 (or x 4) uint8 frame of at least one pixel. Why: `encode`
    takes `image[..., :3]` and scales by 1/255, so a grey (H x W) frame would be cut to its first three
    columns and a 16-bit or float frame silently mis-scaled (`core.images.load_image` gives the right kind)."""
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8 or 0 in image.shape[:2]:
        raise UsageError(
            f"{what} needs an H x W x 3 uint8 RGB image, got shape {image.shape} {image.dtype}; "
            "convert it to 8-bit RGB first"
        )


def crop_window(
    shape: tuple[int, int],
    points: list[tuple[float, float]],
    prev: np.ndarray | None,
    expand: float = EXPAND,
    min_side: float = MIN_SIDE,
    max_aspect: float = 1.0,
) -> CropWindow:
    """RITM's zoom-in: the bounding box of the previous mask and the clicks, grown by `expand` per
    side, at least `min_side` of the frame's long side (the first click sees its surroundings);
    square, or up to `max_aspect` : 1 so a long thin object (a pavement strip) keeps its width's
    resolution instead of being a few crop pixels across."""
    h, w = shape
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if prev is not None and prev.any():
        x, y, bw, bh = cv2.boundingRect(prev.view(np.uint8) if prev.dtype == bool else prev.astype(np.uint8))
        xs += [x, x + bw - 1]
        ys += [y, y + bh - 1]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    least, most = max(min_side * max(h, w), 16.0), 1.2 * max(h, w)
    across, down = (min(max(d * (1 + 2 * expand), least), most) for d in (x1 - x0, y1 - y0))
    longer = max(across, down)
    across, down = max(across, longer / max_aspect), max(down, longer / max_aspect)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if across == down:
        return CropWindow(cx - across / 2, cy - down / 2, across / CROP)
    return CropWindow(cx - across / 2, cy - down / 2, across / CROP, down / CROP)


def focus_window(whole: CropWindow, latest: tuple[float, float, bool], prev: np.ndarray) -> CropWindow | None:
    """FocalClick's focus crop for the latest click `(x, y, positive)`: a square around it sized by
    its distance to the boundary of `prev` (the answer before it), or None where that would not be
    much finer than `whole` (the window around the object and every click). A long pavement strip's
    whole window is ~5 frame px per crop px, coarser than the slivers its later clicks fix."""
    x, y, positive = latest
    prev = prev.astype(bool)
    if not prev.any():
        return None
    h, w = prev.shape
    xi, yi = click_pixel((h, w), x, y)
    # the distance to the nearest pixel on the other side of the boundary: mask pixels for a
    # positive click (outside the mask), background pixels for a negative one (inside it)
    other = ~prev if positive else prev
    distance = float(cv2.distanceTransform(other.view(np.uint8), cv2.DIST_L2, 3)[yi, xi])
    side = max(FOCUS_SPAN * distance, FOCUS_MIN * max(h, w))
    if side > FOCUS_MAX * min(whole.scale, whole.sy) * CROP:
        return None
    return CropWindow(x - side / 2, y - side / 2, side / CROP)


def encode(
    image: np.ndarray,
    positives: list[tuple[float, float]],
    negatives: list[tuple[float, float]],
    prev: np.ndarray,
    window: CropWindow,
    seg: np.ndarray | None = None,
) -> np.ndarray:
    """The CHANNELS x CROP x CROP float32 network input for one object (image in [-0.5, 0.5]);
    `seg`: the frame's p(clicked class) plane (float32 in [0, 1]; None: zeros)."""
    m = window.to_crop()
    rgb = cv2.warpAffine(
        image[..., :3], m, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    mask = cv2.warpAffine(prev.astype(np.float32), m, (CROP, CROP), flags=cv2.INTER_LINEAR)
    disks = np.zeros((2, CROP, CROP), np.float32)
    for k, pts in enumerate((positives, negatives)):
        for x, y in pts:
            u, v = window.point(x, y)
            cv2.circle(disks[k], (int(round(u)), int(round(v))), DISK_RADIUS, 1.0, -1)
    out = np.zeros((CHANNELS, CROP, CROP), np.float32)
    out[:3] = rgb.transpose(2, 0, 1).astype(np.float32) / 255.0 - 0.5
    out[3:5] = disks
    out[PREV] = mask
    if seg is not None:
        out[SEG] = cv2.warpAffine(seg.astype(np.float32, copy=False), m, (CROP, CROP), flags=cv2.INTER_LINEAR)
    return out


def paste_back(prob: np.ndarray, prev: np.ndarray, window: CropWindow) -> np.ndarray:
    """Frame-sized boolean mask: the crop's prediction inside the window, `prev` outside it."""
    h, w = prev.shape
    m = window.to_crop()
    full = cv2.warpAffine(prob.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inside = cv2.warpAffine(
        np.ones((CROP, CROP), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ).astype(bool)
    return np.where(inside, full >= 0.5, prev.astype(bool))


def paste_logits(
    delta: np.ndarray, prior: float, prev: np.ndarray, window: CropWindow, guide: np.ndarray | None = None
) -> np.ndarray:
    """Frame-sized boolean mask: inside the window, the head's residual (resampled from the crop) plus
    the previous mask's term at the frame's resolution; `prev` outside it. With `guide` (the frame,
    H x W x 3 uint8) those logits are guided-filtered by its grey levels at the frame's resolution
    first, so the boundary follows the image's edges instead of the crop's coarse pixels."""
    h, w = prev.shape
    m = window.to_crop()
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    full = cv2.warpAffine(delta.astype(np.float32), m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(
        np.ones((CROP, CROP), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ).astype(bool)
    prev = prev.astype(bool)
    logits = full + prior * np.where(prev, 1.0, -1.0).astype(np.float32)
    if guide is not None:  # only the window (and a radius around it) matters: the rest stays `prev`
        r = guide_radius((h, w), max(window.scale, window.sy))
        x, y, bw, bh = cv2.boundingRect(inside.view(np.uint8))
        x0, y0, x1, y1 = max(x - r, 0), max(y - r, 0), min(x + bw + r, w), min(y + bh + r, h)
        if bw and bh:
            grey = grey_guide(guide[y0:y1, x0:x1])
            logits[y0:y1, x0:x1] = guided_filter(grey, logits[y0:y1, x0:x1], r)
    return np.where(inside, logits >= 0, prev)


def save_click_model(path: str | Path, model: ClickNet, info: dict[str, Any] | None = None) -> Path:
    """Write the click model atomically (tensors + plain metadata: loadable with weights_only=True)."""
    import io

    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "width": model.width, "state": state, "info": dict(info or {})}, buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_click_model(path: str | Path) -> tuple[ClickNet, dict[str, Any]]:
    """The model (eval mode, CPU) and its training info; CheckpointError for anything else."""
    path = Path(path)
    check_archive(path, MAX_CLICK_MODEL_BYTES)  # declared sizes and compression, before torch.load inflates
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(
            f"click model {path} does not exist; train one with segstudio train --click-model"
        ) from None
    except Exception as error:
        raise CheckpointError(
            f"{path} is not a readable click model ({type(error).__name__}: {error}); "
            "train a new one with segstudio train --click-model"
        ) from None
    if isinstance(payload, dict) and payload.get("format") in OLD_FORMATS:
        raise CheckpointError(
            f"{path} is a click model of an earlier format (without the segmentation model's evidence); "
            "train a new one with segstudio train --click-model"
        )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a SegStudio click model (train one with segstudio train --click-model)"
        )
    width, state = payload.get("width"), payload.get("state")
    stem = state.get("stem.0.weight") if isinstance(state, dict) else None
    # the stem's shape before building the net: a damaged width (0, -3, 10**6) must not reach ClickNet's
    # allocation (a huge one takes all memory), and a missing part is named here, not as a KeyError
    if (
        not isinstance(width, int)
        or not isinstance(stem, torch.Tensor)
        or tuple(stem.shape) != (width, CHANNELS, 3, 3)
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise CheckpointError(
            f"{path}: the click model's weights are missing or do not fit its width {width!r}; "
            "train a new one with segstudio train --click-model"
        )
    model = ClickNet(width=width)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: click model weights do not fit ({error})") from None
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(
            f"{path}: the click model's weights contain NaN or infinity (its training diverged); "
            "train a new one with segstudio train --click-model"
        )
    return model.eval(), _checked_info(path, payload.get("info", {}))


#: the info keys `ClickPredictor.from_info` reads as switches
_INFO_FLAGS = ("use_prev", "seg_evidence", "proposal", "colour_fallback", "per_click", "misnamed", "focus")


def _checked_info(path: Path, info: Any) -> dict[str, Any]:
    """The file's training info where it steers prediction: switches must be true/false and `max_aspect`
    a finite number >= 1. A damaged or hand-edited file is refused here, naming the key, instead of
    failing on the first click (a max_aspect of 0 divided by zero there) or acting on "false" as true."""
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: the click model's info is a {type(info).__name__}, not a mapping")
    for key in _INFO_FLAGS:
        if key in info and not isinstance(info[key], bool):
            raise CheckpointError(f"{path}: the click model's info {key!r} is {info[key]!r}, not true/false")
    aspect = info.get("max_aspect", 1.0)
    if (
        isinstance(aspect, bool)
        or not isinstance(aspect, int | float)
        or not (math.isfinite(aspect) and aspect >= 1)
    ):
        raise CheckpointError(
            f"{path}: the click model's info 'max_aspect' is {aspect!r}; it must be a number of at least 1"
        )
    return dict(info)


class ClickPredictor:
    """Runs the model for one click state: (image, clicks, previous mask, the frame's segmentation
    evidence, the clicked class) -> boolean frame mask."""

    def __init__(
        self,
        model: ClickNet,
        threads: int | None = None,
        use_prev: bool = True,
        seg_evidence: bool = True,
        proposal: bool = True,
        colour_fallback: bool = True,
        per_click: bool = True,
        misnamed: bool = False,
        guided: bool = True,
        max_aspect: float = 1.0,
        focus: bool = False,
    ) -> None:
        if not max_aspect >= 1.0:  # crop_window divides by it; below 1 (or NaN) has no meaning
            raise UsageError(f"a click model's crops need max_aspect >= 1, got {max_aspect!r}")
        self.model = model.eval()
        self.threads = threads
        self.use_prev = use_prev  # False only for the no-previous-mask ablation's models
        self.seg_evidence = seg_evidence  # False: the seg channel stays zero (ablation)
        self.proposal = proposal  # the first click starts from the segmentation model's region
        self.colour_fallback = colour_fallback  # ... or the colour region where the model has none
        self.per_click = per_click  # every positive click outside the mask, not only the first one
        self.misnamed = misnamed  # where the model disagrees: its segment under the click, before colour
        self.guided = guided  # the answer's boundary guided-filtered by the frame (inference only)
        self.max_aspect = max_aspect  # the crop's longest side : shortest (1: square)
        self.focus = focus  # a corrective click near the boundary is refined in a local window too

    @classmethod
    def from_info(
        cls, model: ClickNet, info: dict[str, Any], threads: int | None = None, guided: bool = True
    ) -> ClickPredictor:
        """The predictor a model was trained for (its info's flags); `guided` is inference-only."""
        return cls(
            model,
            threads,
            use_prev=bool(info.get("use_prev", True)),
            seg_evidence=bool(info.get("seg_evidence", True)),
            proposal=bool(info.get("proposal", True)),
            colour_fallback=bool(info.get("colour_fallback", True)),
            per_click=bool(info.get("per_click", True)),
            misnamed=bool(info.get("misnamed", False)),
            guided=guided,
            max_aspect=float(info.get("max_aspect", 1.0)),
            focus=bool(info.get("focus", False)),
        )

    def start_mask(
        self,
        image: np.ndarray,
        positives: list[tuple[float, float]],
        negatives: list[tuple[float, float]],
        prev: np.ndarray,
        seg: SegEvidence | None,
        active_class: int,
    ) -> np.ndarray:
        """The previous mask the network sees. A positive click outside it (the first click, or one the
        network's answer left out) adds that click's proposal when this model was trained with it: the
        segmentation model's region of the class under the click, else (the model disagrees with the
        click) the model's own segment under it when the model was trained with `misnamed`, else the
        colour region around it. Without that, a click the network once declined stayed
        declined: the robot measured 58 clicks in a row on one frame each adding only its disc."""
        if not (self.proposal and seg is not None):
            return prev
        first_only = len(positives) == 1 and not negatives and not prev.any()
        start = prev.astype(bool, copy=True)
        for x, y in positives if (self.per_click or first_only) else ():
            xi, yi = click_pixel(start.shape, x, y)
            if start[yi, xi]:
                continue
            proposal = seg.proposal(active_class, x, y)
            if self.misnamed and not proposal.any():
                proposal = seg.misnamed(x, y)
            if self.colour_fallback and not proposal.any():
                proposal = colour_proposal(image, x, y)
            start |= proposal
        return start

    def focus_window(
        self,
        whole: CropWindow,
        points: list[tuple[float, float]],
        prev: np.ndarray,
        latest: tuple[float, float, bool] | None,
    ) -> CropWindow | None:
        """Where a focus model refines its answer to the latest click (None: it doesn't)."""
        if not self.focus or latest is None or len(points) < 2:
            return None
        return focus_window(whole, latest, prev)

    def _answer(
        self,
        image: np.ndarray,
        positives: list[tuple[float, float]],
        negatives: list[tuple[float, float]],
        fed: np.ndarray,
        window: CropWindow,
        plane: np.ndarray | None,
    ) -> np.ndarray:
        x = torch.from_numpy(encode(image, positives, negatives, fed, window, plane))[None]
        delta = self.model.delta(x)[0, 0].numpy()
        return paste_logits(delta, float(self.model.prior), fed, window, image if self.guided else None)

    @torch.inference_mode()
    def predict(
        self,
        image: np.ndarray,
        positives: list[tuple[float, float]],
        negatives: list[tuple[float, float]],
        prev: np.ndarray,
        seg: SegEvidence | None = None,
        active_class: int = 0,
        latest: tuple[float, float, bool] | None = None,
    ) -> np.ndarray:
        """`prev`: the answer to the clicks before the latest one, `latest` (x, y, positive): that click
        (None: unknown, as after a replay; a focus model then answers in the whole window)."""
        check_frame(image)
        shapes = {"previous mask": prev.shape} | ({} if seg is None else {"segmentation evidence": seg.shape})
        for what, shape in shapes.items():
            if tuple(shape) != image.shape[:2]:
                raise UsageError(f"the click model's {what} is {tuple(shape)}, its image {image.shape[:2]}")
        if not positives:
            return np.zeros(image.shape[:2], bool)
        start = self.start_mask(image, positives, negatives, prev, seg, active_class)
        points = positives + negatives
        whole = crop_window(image.shape[:2], points, start, max_aspect=self.max_aspect)
        fed = start if self.use_prev else np.zeros_like(start)
        plane = seg.plane(active_class) if (seg is not None and self.seg_evidence) else None
        local = self.focus_window(whole, points, prev, latest)
        previous_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            answer = self._answer(image, positives, negatives, fed, whole, plane)
            if local is not None:  # FocalClick: the whole answer, then refined around the click
                answer = self._answer(image, positives, negatives, answer, local, plane)
        finally:
            if self.threads:
                torch.set_num_threads(previous_threads)
        return answer
