"""Training data: manifest round trip and fingerprint, joint augmentations, datasets, class weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segstudio.core.masks import save_mask
from segstudio.core.project import Project, Status
from segstudio.ml.augment import AugmentConfig, eval_transform, to_tv, train_transform
from segstudio.ml.data import ArrayDataset, RepeatDataset, balanced_class_weights, class_pixel_counts
from segstudio.ml.manifest import BaseSpec, ManifestError, TrainManifest, manifest_from_project, resolve_base
from segstudio.ml.synthetic import make_shapes_dataset, write_shapes_manifest

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)


def _coloured_pair(size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image whose colour *is* its mask (class k painted PALETTE[k]): alignment is checkable."""
    mask = np.zeros((size, size), np.uint8)
    mask[: size // 2, : size // 3] = 1
    mask[size // 2 :, size // 2 :] = 2
    mask[seed : seed + size // 4, size // 2 : size // 2 + size // 4] = 3
    return PALETTE[mask], mask


def _denormalise(image: torch.Tensor, config: AugmentConfig) -> np.ndarray:
    mean = torch.tensor(config.mean).view(3, 1, 1)
    std = torch.tensor(config.std).view(3, 1, 1)
    return ((image * std + mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def test_manifest_round_trip_and_fingerprint(tmp_path):
    manifest = write_shapes_manifest(
        tmp_path,
        train=3,
        val=2,
        size=32,
        version="v4",
        base=BaseSpec("checkpoint", "/x/best.pt", "v3"),
        settings={"epochs": 2},
    )
    path = manifest.save(tmp_path / "m.json")
    loaded = TrainManifest.load(path)
    assert loaded.to_dict() == manifest.to_dict()
    assert json.loads(path.read_text())["format"] == "segstudio-train-manifest"
    assert loaded.fingerprint() == manifest.fingerprint()
    # a corrected mask changes the fingerprint (the training set is not the same any more)
    changed = TrainManifest.from_dict(manifest.to_dict())
    changed.train[0] = type(changed.train[0])(**{**changed.train[0].__dict__, "mask_hash": "different"})
    assert changed.fingerprint() != manifest.fingerprint()


def test_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        TrainManifest.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(ManifestError, match="not a SegStudio training manifest"):
        TrainManifest.load(tmp_path / "bad.json")
    with pytest.raises(ManifestError, match="unknown base kind"):
        BaseSpec("imagenet21k")


def test_train_transform_crops_pads_255_and_keeps_image_and_mask_aligned():
    config = AugmentConfig(crop=64, scale_min=0.5, scale_max=1.0, jitter=0.0, hflip=0.5)
    transform = train_transform(config)
    image, mask = _coloured_pair(48)
    torch.manual_seed(0)
    padded_seen = False
    for _ in range(20):
        img, msk = transform(*to_tv(image, mask))
        assert img.shape == (3, 64, 64) and img.dtype == torch.float32
        assert msk.shape == (64, 64) and msk.dtype == torch.int64
        values = set(msk.unique().tolist())
        assert values <= {0, 1, 2, 3, 255}
        padded_seen |= 255 in values  # image at most 48 px, crop 64: padding is always there
        rgb = _denormalise(img.as_subclass(torch.Tensor), config)
        labelled = msk.numpy() != 255
        # the class read back from each pixel's colour agrees with the mask (resampling edges aside)
        distance = np.abs(rgb[:, :, None, :].astype(int) - PALETTE[None, None].astype(int)).sum(-1)
        from_colour = distance.argmin(-1)
        interior = labelled.copy()  # pixels whose 4 neighbours share their class: no resampling blend
        for axis in (0, 1):
            for shift in (-1, 1):
                interior &= np.roll(msk.numpy(), shift, axis) == msk.numpy()
        assert (from_colour[interior] == msk.numpy()[interior]).mean() > 0.99
        assert (from_colour[labelled] == msk.numpy()[labelled]).mean() > 0.9
        # padded image pixels are black (fill 0 before normalisation)
        assert np.all(rgb[~labelled] <= 1)
    assert padded_seen


def test_flip_happens_to_both():
    config = AugmentConfig(crop=48, scale_min=1.0, scale_max=1.0, jitter=0.0, hflip=1.0)
    image, mask = _coloured_pair(48)
    img, msk = train_transform(config)(*to_tv(image, mask))
    assert np.array_equal(msk.numpy(), mask[:, ::-1])
    assert np.array_equal(_denormalise(img.as_subclass(torch.Tensor), config), image[:, ::-1])


def test_eval_transform_keeps_full_mask_and_caps_image():
    config = AugmentConfig(max_side=32)
    image, mask = _coloured_pair(48)
    img, msk = eval_transform(config)(*to_tv(image, mask))
    assert img.shape == (3, 32, 32)
    assert np.array_equal(msk.numpy(), mask)


def test_to_tv_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="does not match"):
        to_tv(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), np.uint8))


def test_datasets_repeat_and_class_statistics():
    masks = [np.array([[0, 0, 1, 255]], np.uint8), np.array([[1, 1, 1, 2]], np.uint8)]
    images = [np.zeros((1, 4, 3), np.uint8)] * 2
    dataset = ArrayDataset(images, masks)
    counts = class_pixel_counts(dataset, 4)
    assert counts.tolist() == [2, 4, 1, 0]  # 255 not counted
    weights = balanced_class_weights(counts)
    raw = 1 / np.sqrt(np.array([2, 4, 1]) / 7)
    assert np.allclose(weights[:3], raw / raw.mean())
    assert weights[3] == 1.0  # absent class
    repeated = RepeatDataset(dataset, 5)
    assert len(repeated) == 6
    assert torch.equal(repeated[5][1], dataset[1][1])
    image, target = dataset[0]
    assert image.dtype == torch.uint8 and target.tolist() == [[0, 0, 1, 255]]


def test_manifest_from_project_uses_done_images_and_stable_split(tmp_path):
    import cv2

    images, masks = make_shapes_dataset(12, 32, seed=3)
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"img{index:02d}.png"), image)
    with Project.open(folder, scheme=None) as project:
        project.set_setting("val_fraction", 0.5)
        records = project.images()
        for rec, mask in zip(records[:10], masks):
            project.save_mask(rec, mask, status=Status.DONE if rec is not records[9] else Status.IN_PROGRESS)
        manifest = manifest_from_project(project, base="scratch", settings={"epochs": 1})
        done = {r.rel_path: r.split for r in project.images(status=Status.DONE)}
        assert len(done) == 9
        assert {s.key for s in manifest.train} == {k for k, v in done.items() if v == "train"}
        assert {s.key for s in manifest.val} == {k for k, v in done.items() if v == "val"}
        assert manifest.train and manifest.val  # 50% val fraction over 9 images
        assert manifest.version == "v1" and manifest.output_dir.endswith("v1")
        assert manifest.base.kind == "scratch"
        assert resolve_base(project, None).kind == "auto"  # no active version yet
        with pytest.raises(ManifestError, match="unknown base"):
            resolve_base(project, "v7")
        sample = manifest.train[0]
        assert np.array_equal(
            cv2.imread(sample.mask, cv2.IMREAD_UNCHANGED), project.load_mask(project.get(sample.key))
        )


def test_manifest_from_project_without_done_images(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with Project.open(folder) as project, pytest.raises(ManifestError, match="no training images"):
        manifest_from_project(project)


def test_saved_shapes_masks_are_plain_pngs(tmp_path):
    save_mask(tmp_path / "m.png", np.full((3, 3), 2, np.uint8))
    manifest = write_shapes_manifest(tmp_path / "ds", train=2, val=1, size=24)
    assert len(manifest.train) == 2 and len(manifest.val) == 1
    assert manifest.label_scheme().names == ["background", "disk", "square", "triangle"]
