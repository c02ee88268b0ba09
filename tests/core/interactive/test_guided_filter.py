"""The guided filter that puts the click model's coarse boundary onto the image's edges."""

from __future__ import annotations

import numpy as np

from segstudio.core.interactive.guided_filter import GUIDE_EPS, grey_guide, guide_radius, guided_filter


def _step_image(edge: int, shape: tuple[int, int] = (60, 80)) -> np.ndarray:
    """Dark left of column `edge`, bright from it on (an object's edge), with a little noise."""
    rng = np.random.default_rng(0)
    image = np.where(np.arange(shape[1]) < edge, 50, 200).astype(np.int16)[None, :, None]
    image = image + rng.integers(-6, 7, (*shape, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_boundary_a_few_pixels_off_moves_onto_the_image_edge():
    image = _step_image(40)
    # the click model's coarse answer: "object" from column 37 on, a soft ramp as after upsampling
    logits = np.clip((np.arange(80, dtype=np.float32) - 36.5) / 3.0, -1, 1)[None, :].repeat(60, 0)
    assert (logits >= 0).sum(axis=1)[0] == 43  # 3 columns too many
    filtered = guided_filter(grey_guide(image), logits, radius=8)
    columns = (filtered >= 0).mean(axis=0)
    assert columns[:39].max() < 0.05 and columns[41:].min() > 0.95  # the edge is at column 40 now
    # a plain box blur (eps so large that the guide's edge no longer counts) keeps the wrong boundary
    blurred = guided_filter(grey_guide(image), logits, radius=8, eps=1e6)
    assert (blurred >= 0).mean(axis=0)[37:39].min() > 0.95


def test_flat_values_and_a_flat_image_are_left_alone():
    image = _step_image(40)
    flat = np.full((60, 80), 0.7, np.float32)
    assert np.allclose(guided_filter(grey_guide(image), flat, 5), 0.7, atol=1e-4)
    grey = np.full((60, 80), 0.5, np.float32)
    ramp = np.linspace(-1, 1, 80, dtype=np.float32)[None, :].repeat(60, 0)
    # on a flat guide the filter is a box mean: a linear ramp keeps its zero crossing
    out = guided_filter(grey, ramp, 4)
    assert np.array_equal(out[:, 10:70] >= 0, ramp[:, 10:70] >= 0)


def test_radius_is_two_crop_pixels_at_most_a_sixtieth_of_the_frame():
    assert guide_radius((360, 480), scale=1.5) == 3  # a small object's crop: fine detail kept
    assert guide_radius((360, 480), scale=6.0) == 8  # a frame-wide object: capped
    assert guide_radius((1080, 1920), scale=10.0) == 20
    assert guide_radius((1080, 1920), scale=30.0) == 32
    assert guide_radius((10, 12), scale=0.2) == 1
    assert 0 < GUIDE_EPS < 1
