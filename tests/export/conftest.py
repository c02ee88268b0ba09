"""Projects of real photos (scikit-image) with generated masks: several classes, holes, islands,
multiple components per class, void regions. Shared by the export tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from segstudio.core.project import Project, Status, split_for_hash
from segstudio.core.schemes import LabelScheme, voc_scheme

PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut.jpg": skdata.astronaut,
    "cats/chelsea.png": skdata.chelsea,
    "coffee.jpg": skdata.coffee,
    "space_shots/rocket.jpg": skdata.rocket,
}


def make_mask(shape: tuple[int, int], classes: Sequence[int], seed: int) -> np.ndarray:
    """A mask exercising every hard case for polygon/RLE writers.

    classes[0] fills the background; classes[1] is a ring whose hole holds void, an island of
    classes[2] and an island of classes[1] itself; classes[2] also has several separate blobs;
    classes[3] (if given) is an ellipse touching the border; a void strip runs along one border.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    a, b, c = classes[0], classes[1], classes[2]
    mask = np.full(shape, a, dtype=np.uint8)
    cy, cx = h // 2, w // 2
    r = min(h, w) // 3
    cv2.circle(mask, (cx, cy), r, int(b), thickness=-1)
    cv2.circle(mask, (cx, cy), int(r * 0.7), 255, thickness=-1)  # hole with void
    cv2.circle(mask, (cx - r // 4, cy), max(2, r // 6), int(c), thickness=-1)  # other class inside the hole
    cv2.rectangle(
        mask, (cx + r // 6, cy - 3), (cx + r // 6 + 5, cy + 3), int(b), thickness=-1
    )  # same class island
    for _ in range(4):  # separate blobs of c
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h // 5))
        cv2.ellipse(
            mask,
            (x, y),
            (int(rng.integers(3, 12)), int(rng.integers(3, 8))),
            float(rng.integers(0, 180)),
            0,
            360,
            int(c),
            -1,
        )
    if len(classes) > 3:
        cv2.ellipse(mask, (w - 1, h - 1), (w // 5, h // 6), 0, 0, 360, int(classes[3]), -1)
    mask[:, :3] = 255  # void strip at the left border
    mask[h - 10 : h - 7, 5:15] = int(c)  # thin bar
    return mask


@dataclass
class PhotoProject:
    image_dir: Path
    masks: dict[str, np.ndarray]

    def open(self) -> Project:
        return Project.open(self.image_dir)


def _mixed_val_fraction(project: Project) -> float:
    hashes = [rec.content_hash for rec in project.images()]
    for fraction in np.linspace(0.05, 0.95, 37):
        splits = {split_for_hash(h, float(fraction)) for h in hashes}
        if splits == {"train", "val"}:
            return float(fraction)
    raise AssertionError("no val fraction splits these photos both ways")


def build_photo_project(
    root: Path,
    scheme: LabelScheme,
    classes: Sequence[int],
    scale: float = 0.4,
    photos: Sequence[str] | None = None,
    statuses: dict[str, Status] | None = None,
) -> PhotoProject:
    """Write downscaled photos to root/images, open a project, save generated masks (done)."""
    image_dir = root / "images"
    masks: dict[str, np.ndarray] = {}
    chosen = list(photos or PHOTOS)
    for rel in chosen:
        path = image_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = PHOTOS[rel]()
        rgb = cv2.resize(
            rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
        Image.fromarray(rgb).save(path, quality=90) if rel.endswith(".jpg") else Image.fromarray(rgb).save(
            path
        )
    with Project.open(image_dir, scheme=scheme) as project:
        if len(project.images()) > 1:
            project.set_setting("val_fraction", _mixed_val_fraction(project))
        for seed, rec in enumerate(project.images()):
            mask = make_mask(rec.shape, classes, seed)
            status = (statuses or {}).get(rec.rel_path, Status.DONE)
            project.save_mask(rec, mask, status=status)
            masks[rec.rel_path] = mask
    return PhotoProject(image_dir, masks)


@pytest.fixture
def voc_project(tmp_path: Path) -> PhotoProject:
    # background, person (ring), car (blobs), dog (corner)
    return build_photo_project(tmp_path, voc_scheme(), [0, 15, 7, 12])


@pytest.fixture
def photo_project_factory() -> Callable[..., PhotoProject]:
    """build_photo_project(root, scheme, classes, scale=, photos=, statuses=) for tests that vary them."""
    return build_photo_project


@pytest.fixture
def camvid_sample(shared_testdata: Path) -> Path:
    """The team's 24 real CamVid frames in mask-folder layout (images/, masks/, scheme.json)."""
    path = shared_testdata / "camvid_sample"
    if not path.is_dir():
        pytest.skip(f"CamVid sample not found at {path}")
    return path


@pytest.fixture
def camvid_project(camvid_sample: Path, tmp_path: Path) -> Path:
    """A project made by importing the CamVid sample (its image folder); masks are the sample's."""
    from segstudio.export.import_common import run_import
    from segstudio.export.mask_folder_import import preview_mask_folder

    return run_import(preview_mask_folder(camvid_sample), tmp_path / "camvid_project")
