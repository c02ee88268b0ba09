"""Stored class probabilities: round trip within the stated quantisation error, bounded size, atomic, keyed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.core.probabilities import (
    MAX_SIDE,
    QUANTISATION_ERROR,
    delete_probabilities,
    load_probabilities,
    probabilities_path,
    quantise,
    save_probabilities,
)
from segstudio.core.project import Project
from segstudio.ml.coarse import coarse_probabilities


def _camvid(shared_testdata, index=0):
    folder = shared_testdata / "camvid_sample"
    path = sorted((folder / "images").glob("*.png"))[index]
    return np.array(Image.open(path).convert("RGB")), np.array(Image.open(folder / "masks" / path.name))


def test_real_photo_probabilities_round_trip_within_the_quantisation_error(shared_testdata, tmp_path):
    image, truth = _camvid(shared_testdata)
    probs = coarse_probabilities(truth, 11, stride=1, blur=2.0)  # full size: 480x360, below MAX_SIDE
    assert max(probs.shape[1:]) <= MAX_SIDE
    (tmp_path / "images").mkdir()
    Image.fromarray(image).save(tmp_path / "images" / "a.png")
    with Project.open(tmp_path / "images") as project:
        rec = project.images()[0]
        path = save_probabilities(project, rec.id, probs, truth.shape)
        assert path == probabilities_path(project, rec.id) and path.is_file()
        stored = load_probabilities(project, rec.id, truth.shape)
        assert stored is not None and stored.image_shape == truth.shape
        error = np.abs(stored.probabilities - probs).max()
        assert error <= QUANTISATION_ERROR + 1e-6, error
        assert (stored.probabilities.argmax(0) == probs.argmax(0)).mean() > 0.99
        assert (
            path.stat().st_size < probs.shape[0] * probs.shape[1] * probs.shape[2]
        )  # compressed below raw uint8
        assert load_probabilities(project, rec.id, (10, 10)) is None  # another image's size: ignored
        assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
        delete_probabilities(project, rec.id)
        assert load_probabilities(project, rec.id) is None


def test_large_maps_are_reduced_to_the_bounded_size():
    probs = (
        np.random.default_rng(0)
        .dirichlet(np.ones(4), size=(1024, 2048))
        .transpose(2, 0, 1)
        .astype(np.float32)
    )
    q = quantise(probs)
    assert q.dtype == np.uint8 and q.shape == (4, 256, 512)
    mean = probs.reshape(4, 256, 4, 512, 4).mean(axis=(2, 4))  # INTER_AREA at an integer factor = block mean
    assert np.abs(q / 255.0 - mean).max() <= QUANTISATION_ERROR + 1e-6


def test_corrupt_file_reads_as_missing(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    with Project.open(tmp_path / "images") as project:
        path = probabilities_path(project, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a zip")
        assert load_probabilities(project, 1) is None
        with pytest.raises(ValueError, match="classes, height, width"):
            quantise(np.zeros((8, 8), np.float32))
