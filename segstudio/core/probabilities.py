"""The model's class probabilities kept with each prediction, so the CRF can be re-run without the model.

Why stored: the dense CRF is a post-process of the network's softmax. Keeping it lets the app show the
prediction before/after CRF instantly, report how much the CRF changed, and tune the CRF parameters on
the user's corrected images (`ml.crf_tune`) without running the model again.

Why this format: the softmax of a DeepLab-style network is smooth (logits at output stride 8-16,
bilinearly upsampled), so it is stored at a reduced size, long side <= `MAX_SIDE` (512 px, INTER_AREA), which
is also the grid the default CRF uses for a 2048x1024 image; quantised to uint8 (`round(255 p)`: each
value within 1/510 of the stored-size probability, `QUANTISATION_ERROR`); zlib-compressed `.npz`.
Disk per image <= classes x 512 x 512 bytes before compression (5.25 MiB for 21 classes); peaked
softmax maps compress far below that (README gives measured sizes). Written atomically; keyed by
the image id under the project's state folder (`probabilities/<id>.npz`), with the image size inside so a
file left from another image of that id is ignored.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segstudio.core.atomic import atomic_write_bytes

__all__ = [
    "MAX_SIDE",
    "QUANTISATION_ERROR",
    "StoredProbabilities",
    "delete_probabilities",
    "load_probabilities",
    "probabilities_path",
    "quantise",
    "save_probabilities",
]

MAX_SIDE = 512
QUANTISATION_ERROR = 0.5 / 255  # max |stored - original| per value at the stored size
FOLDER = "probabilities"


@dataclass(frozen=True)
class StoredProbabilities:
    probabilities: np.ndarray  # (C, h, w) float32 in [0, 1], long side <= MAX_SIDE
    image_shape: tuple[int, int]  # (height, width) of the image they belong to


def probabilities_path(project: Any, image_id: int) -> Path:
    return Path(project.state_dir) / FOLDER / f"{int(image_id)}.npz"


def _reduced_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def quantise(probabilities: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """(C, h, w) uint8 = round(255 p) at long side <= max_side (area-averaged, so still sums to ~1)."""
    probs = np.asarray(probabilities, dtype=np.float32)
    if probs.ndim != 3:
        raise ValueError(f"probabilities must be (classes, height, width), got shape {probs.shape}")
    h, w = _reduced_size(probs.shape[1], probs.shape[2], max_side)
    out = np.empty((probs.shape[0], h, w), np.uint8)
    for c, plane in enumerate(probs):  # one plane at a time: no C x H x W temporary
        small = plane if plane.shape == (h, w) else cv2.resize(plane, (w, h), interpolation=cv2.INTER_AREA)
        out[c] = np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)
    return out


def save_probabilities(
    project: Any, image_id: int, probabilities: np.ndarray, image_shape: tuple[int, int]
) -> Path:
    """Quantise, compress and write atomically; returns the file written."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, q=quantise(probabilities), image_shape=np.asarray(image_shape[:2], np.int64))
    path = probabilities_path(project, image_id)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_probabilities(
    project: Any, image_id: int, image_shape: tuple[int, int] | None = None
) -> StoredProbabilities | None:
    """The stored probabilities, or None when there are none, they are unreadable, or they belong to an
    image of another size (`image_shape`, when given)."""
    path = probabilities_path(project, image_id)
    try:
        with np.load(path, allow_pickle=False) as data:
            q, shape = data["q"], tuple(int(v) for v in data["image_shape"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if q.dtype != np.uint8 or q.ndim != 3 or len(shape) != 2:
        return None
    if image_shape is not None and tuple(image_shape[:2]) != shape:
        return None
    return StoredProbabilities(q.astype(np.float32) / 255.0, (shape[0], shape[1]))


def delete_probabilities(project: Any, image_id: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        probabilities_path(project, image_id).unlink()
