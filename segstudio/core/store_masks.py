"""The state folder's layout and the mask / prediction files in it.

Files are keyed by the image's stable database id, so a rename on disk only updates one row and
every file follows. Each file is written atomically (see `core.masks`); `has_mask` looks at the
file itself, never at a flag that could disagree with it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from segstudio.core import masks as mask_io
from segstudio.core.atomic import TEMP_SUFFIX
from segstudio.core.errors import MaskError
from segstudio.core.state_guard import check_write_target
from segstudio.core.store_records import ImageRecord, Prediction

__all__ = ["STATE_DIR_NAME", "StateLayout", "check_shape"]

STATE_DIR_NAME = ".segstudio"


def _key(rec: ImageRecord | int) -> int:
    return rec if isinstance(rec, int) else rec.id


class StateLayout:
    """Where each kind of file lives inside a project's state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.masks_dir = state_dir / "masks"
        self.predictions_dir = state_dir / "predictions"
        self.predictions_raw_dir = state_dir / "predictions_raw"
        self.confidence_dir = state_dir / "confidence"
        self.models_dir = state_dir / "models"
        self.thumbnails_dir = state_dir / "thumbnails"

    def create(self) -> None:
        for folder in (self.masks_dir, self.predictions_dir, self.predictions_raw_dir, self.confidence_dir,
                       self.models_dir, self.thumbnails_dir):  # fmt: skip
            folder.mkdir(exist_ok=True)

    def mask_path(self, rec: ImageRecord | int) -> Path:
        return self.masks_dir / f"{_key(rec)}.png"

    def prediction_path(self, rec: ImageRecord | int) -> Path:
        return self.predictions_dir / f"{_key(rec)}.png"

    def raw_prediction_path(self, rec: ImageRecord | int) -> Path:
        return self.predictions_raw_dir / f"{_key(rec)}.png"

    def confidence_path(self, rec: ImageRecord | int) -> Path:
        return self.confidence_dir / f"{_key(rec)}.png"

    def remove_stale_temp_files(self) -> None:
        """Temp files left by a killed writer; safe to delete only while holding the project lock."""
        for folder in (self.state_dir, self.masks_dir, self.predictions_dir, self.predictions_raw_dir,
                       self.confidence_dir, self.models_dir):  # fmt: skip
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.endswith(TEMP_SUFFIX):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)

    def has_any_mask(self) -> bool:
        with contextlib.suppress(OSError):
            return any(name.endswith(".png") for name in os.listdir(self.masks_dir))
        return False

    def move_to_stale(self, image_id: int, now: float) -> None:
        """Keep (never delete) masks of an image whose file changed size: they no longer line up."""
        target = self.state_dir / "stale" / f"{image_id}-{int(now)}"
        for kind, path in (("mask", self.mask_path(image_id)), ("prediction", self.prediction_path(image_id)),
                           ("prediction_raw", self.raw_prediction_path(image_id)),
                           ("confidence", self.confidence_path(image_id))):  # fmt: skip
            if path.is_file():
                check_write_target(target / f"{kind}.png")  # no link on the way (core.state_guard)
                target.mkdir(parents=True, exist_ok=True)
                os.replace(path, target / f"{kind}.png")

    # ------------------------------------------------------------ reading and writing files

    def load_mask(self, rec: ImageRecord) -> np.ndarray | None:
        """The corrected mask, or None if the user has not saved one."""
        path = self.mask_path(rec)
        if not path.is_file():
            return None
        return mask_io.load_mask(path, rec.shape)

    def load_prediction(self, rec: ImageRecord) -> Prediction | None:
        """The stored model prediction, or None if the image has never been predicted."""
        path = self.prediction_path(rec)
        if not path.is_file():
            return None
        labels = mask_io.load_mask(path, rec.shape)
        confidence = None
        if self.confidence_path(rec).is_file():
            confidence = mask_io.load_confidence(self.confidence_path(rec), labels.shape)
        raw = None
        if self.raw_prediction_path(rec).is_file():
            raw = mask_io.load_mask(self.raw_prediction_path(rec), labels.shape)
        return Prediction(labels, confidence, raw)

    def write_prediction(
        self, rec: ImageRecord, labels: np.ndarray, confidence: np.ndarray, raw_labels: np.ndarray | None
    ) -> float | None:
        """Write the prediction files (labels last, so they appear only when complete); mean confidence 0..1."""
        check_shape(rec, labels, "the predicted labels")
        check_shape(rec, confidence, "the confidence map")
        conf = np.asarray(confidence)
        if raw_labels is not None:
            check_shape(rec, raw_labels, "the raw predicted labels")
        mask_io.save_confidence(self.confidence_path(rec), conf)
        if raw_labels is not None:
            mask_io.save_mask(self.raw_prediction_path(rec), raw_labels)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.raw_prediction_path(rec).unlink()
        mask_io.save_mask(self.prediction_path(rec), labels)
        return float(conf.mean()) / 255.0 if conf.size else None


def check_shape(rec: ImageRecord, array: np.ndarray, what: str) -> None:
    """Refuse an array that does not line up with the image (a mask must never be stretched)."""
    if rec.shape is not None and np.asarray(array).shape != rec.shape:
        raise MaskError(
            f"{what} for {rec.rel_path} has shape {np.asarray(array).shape} but the image is "
            f"{rec.width}x{rec.height} (expected shape {rec.shape})"
        )
