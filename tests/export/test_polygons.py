"""Painted polygons reproduce masks exactly under Pillow (the rasteriser json2labelImg uses)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segstudio.export.polygons import mask_to_polygons, rasterize_polygons


@pytest.mark.parametrize("seed", range(12))
def test_random_blocky_and_noisy_masks_round_trip(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(12, 70, 2))
    if seed % 2:
        mask = rng.integers(0, 4, (h, w)).astype(np.uint8)  # worst case: diagonal crossings everywhere
    else:
        coarse = rng.integers(0, 4, (h // 5 + 1, w // 5 + 1)).astype(np.uint8)
        mask = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
    mask[mask == 3] = 255
    polygons = mask_to_polygons(mask, background=255)
    assert np.array_equal(rasterize_polygons(polygons, mask.shape, 255), mask)


def test_holes_are_filled_by_painting_order():
    mask = np.zeros((40, 40), dtype=np.uint8)
    cv2.circle(mask, (20, 20), 15, 1, -1)
    cv2.circle(mask, (20, 20), 9, 0, -1)  # hole of class 0 inside class 1
    cv2.circle(mask, (20, 20), 3, 1, -1)  # island of class 1 in the hole
    polygons = mask_to_polygons(mask, background=0, exact=False)
    # only outer contours: ring, hole content (class 0, emitted since it does not touch the border), island
    assert [p.value for p in polygons] == [1, 0, 1]
    assert np.array_equal(rasterize_polygons(polygons, mask.shape, 0), mask)


def test_background_components_touching_the_border_are_not_emitted():
    mask = np.full((10, 10), 5, dtype=np.uint8)
    mask[:, :4] = 0
    polygons = mask_to_polygons(mask, background=0)
    assert [p.value for p in polygons] == [5]


def test_single_pixels_become_two_vertex_polygons():
    mask = np.zeros((5, 5), dtype=np.uint8)
    mask[2, 2] = 7
    polygons = mask_to_polygons(mask, background=0)
    assert polygons[0].points == ((2, 2), (2, 2))
    assert np.array_equal(rasterize_polygons(polygons, mask.shape, 0), mask)
