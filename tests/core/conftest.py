"""Fixtures for core tests: real photos from scikit-image and small generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket")


def real_photo(name: str) -> np.ndarray:
    """A real photo bundled with scikit-image (no download)."""
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)())


def write_image(path: Path, array: np.ndarray, **save_kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)
    return path


def random_rgb(rng: np.random.Generator, height: int = 24, width: int = 32) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder with four real photos (JPEG) in natural-sort-sensitive names and a subfolder."""
    folder = tmp_path / "photos"
    names = {"astronaut": "img2.jpg", "chelsea": "img10.jpg", "coffee": "sub/img1.jpg", "rocket": "img1.png"}
    for photo, name in names.items():
        write_image(folder / name, real_photo(photo), **({"quality": 90} if name.endswith(".jpg") else {}))
    return folder


@pytest.fixture(name="real_photo")
def real_photo_fixture():
    return real_photo


@pytest.fixture(name="write_image")
def write_image_fixture():
    return write_image
