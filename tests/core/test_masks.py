from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import MaskError
from segstudio.core.masks import load_confidence, load_mask, save_confidence, save_mask, save_palette_png
from segstudio.core.schemes import UNLABELED, voc_scheme


def _mask(rng: np.random.Generator, shape=(37, 53)) -> np.ndarray:
    mask = rng.integers(0, 21, shape, dtype=np.uint8)
    mask[:5] = UNLABELED
    return mask


def test_mask_round_trip_is_single_channel_png(tmp_path: Path, rng) -> None:
    mask = _mask(rng)
    path = tmp_path / "m.png"
    save_mask(path, mask)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "L"
    loaded = load_mask(path, shape=mask.shape)
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, mask)


def test_palette_png_keeps_indices_and_colours(tmp_path: Path, rng) -> None:
    mask = _mask(rng)
    lut = voc_scheme().lut()
    path = tmp_path / "p.png"
    save_palette_png(path, mask, lut)
    with Image.open(path) as img:
        assert img.mode == "P"
        palette = np.array(img.getpalette()[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
        assert np.array_equal(np.asarray(img.convert("RGB")), lut[mask])
    assert np.array_equal(palette[:21], lut[:21]) and tuple(palette[255]) == (224, 224, 192)
    assert np.array_equal(load_mask(path), mask)  # palette PNGs load as indices


def test_confidence_round_trip(tmp_path: Path, rng) -> None:
    conf = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    save_confidence(tmp_path / "c.png", conf)
    assert np.array_equal(load_confidence(tmp_path / "c.png", (20, 30)), conf)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 4, 3), np.uint8), "2-D"),
        (np.zeros((4, 4), np.int32), "uint8"),
        (np.zeros((0, 4), np.uint8), "empty"),
    ],
)
def test_bad_arrays_are_refused(tmp_path: Path, array: np.ndarray, message: str) -> None:
    with pytest.raises(MaskError, match=message):
        save_mask(tmp_path / "x.png", array)
    assert not (tmp_path / "x.png").exists()


def test_shape_mismatch_and_corrupt_files(tmp_path: Path, rng) -> None:
    path = tmp_path / "m.png"
    save_mask(path, _mask(rng, (10, 20)))
    with pytest.raises(MaskError, match="20x10 but its image is 30x10"):
        load_mask(path, shape=(10, 30))
    data = path.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MaskError, match="corrupt or truncated"):
        load_mask(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("nope")
    with pytest.raises(MaskError, match="not a PNG"):
        load_mask(tmp_path / "text.png")
    with pytest.raises(MaskError, match="does not exist"):
        load_mask(tmp_path / "missing.png")
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(MaskError, match="single-channel"):
        load_mask(tmp_path / "rgb.png")


def test_overwrite_is_atomic_replacement(tmp_path: Path, rng) -> None:
    path = tmp_path / "dir with space" / "ü.png"
    first, second = _mask(rng), _mask(rng)
    save_mask(path, first)
    inode_before = path.stat().st_ino
    save_mask(path, second)
    assert np.array_equal(load_mask(path), second)
    assert path.stat().st_ino != inode_before  # replaced by rename, never rewritten in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["ü.png"]
