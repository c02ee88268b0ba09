"""Real photos with known truth for the interactive tools (labelme's VOC example, CamVid)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image


def load_voc(root: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    image = np.array(Image.open(root / "data_annotated" / f"{stem}.jpg").convert("RGB"))
    truth = np.array(Image.open(root / "expected_voc" / "SegmentationClass" / f"{stem}.png"))
    return image, truth


def largest_object(truth: np.ndarray, cls: int) -> np.ndarray:
    _count, comp, stats, _ = cv2.connectedComponentsWithStats((truth == cls).view(np.uint8))
    return comp == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())


@pytest.fixture
def voc(labelme_example: Path):
    return lambda stem: load_voc(labelme_example, stem)


@pytest.fixture
def camvid_frame(shared_testdata: Path) -> tuple[np.ndarray, np.ndarray]:
    root = shared_testdata / "camvid_sample"
    image = np.array(Image.open(root / "images" / "0001TP_006690.png").convert("RGB"))
    truth = np.array(Image.open(root / "masks" / "0001TP_006690.png"))
    return image, truth
