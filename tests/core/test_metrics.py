from __future__ import annotations

import math

import numpy as np
import pytest

from segstudio.core.metrics import SegmentationMetrics, confusion_matrix


def test_hand_computed_case() -> None:
    target = np.array([[0, 0, 1, 1], [255, 2, 2, 2]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [0, 2, 2, 0]], dtype=np.uint8)
    cm = confusion_matrix(pred, target, 3)
    # rows = target, cols = pred; the 255 pixel is ignored.
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert cm.dtype == np.int64
    m = SegmentationMetrics.from_confusion(cm)
    assert m.pixel_accuracy == pytest.approx(5 / 7)
    assert m.mean_pixel_accuracy == pytest.approx((1 / 2 + 2 / 2 + 2 / 3) / 3)
    # IoU: class 0: 1 / (2 + 2 - 1); class 1: 2 / (2 + 3 - 2); class 2: 2 / (3 + 2 - 2)
    assert m.per_class_iou.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert m.miou == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    assert m.fwiou == pytest.approx((2 * (1 / 3) + 2 * (2 / 3) + 3 * (2 / 3)) / 7)


def test_perfect_prediction_and_absent_class() -> None:
    target = np.array([[0, 0], [2, 2]])
    m = SegmentationMetrics.compute(target.copy(), target, num_classes=3)
    assert m.pixel_accuracy == 1.0 and m.mean_pixel_accuracy == 1.0 and m.miou == 1.0 and m.fwiou == 1.0
    assert math.isnan(m.per_class_iou[1])  # class 1 never appears: undefined, left out of the mean
    d = m.to_dict(["a", "b", "c"])
    assert d["per_class_iou"] == {"a": 1.0, "b": None, "c": 1.0}


def test_predicted_but_absent_class_counts_as_zero_iou() -> None:
    target = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 0, 1])
    m = SegmentationMetrics.compute(pred, target, 2)
    assert m.per_class_iou.tolist() == pytest.approx([0.75, 0.0])
    assert m.miou == pytest.approx(0.375)
    assert m.mean_pixel_accuracy == pytest.approx(0.75)  # only classes present in the target
    assert m.fwiou == pytest.approx(0.75)


def test_matches_a_plain_loop_on_random_data() -> None:
    rng = np.random.default_rng(7)
    c = 5
    target = rng.integers(0, c, (64, 48))
    target[rng.random(target.shape) < 0.1] = 255
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, c, target.shape))
    pred[pred == 255] = 0
    expected = np.zeros((c, c), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel(), strict=True):
        if t != 255:
            expected[t, p] += 1
    cm = confusion_matrix(pred, target, c)
    assert np.array_equal(cm, expected)
    # additivity: two halves sum to the whole
    halves = confusion_matrix(pred[:32], target[:32], c) + confusion_matrix(pred[32:], target[32:], c)
    assert np.array_equal(halves, cm)


def test_custom_ignore_index_and_out_of_range_targets() -> None:
    target = np.array([0, 1, 9, 200])
    pred = np.array([0, 1, 1, 1])
    assert confusion_matrix(pred, target, 2, ignore_index=9).tolist() == [[1, 0], [0, 1]]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match=r"outside 0..1"):
        confusion_matrix(np.array([0, 255]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="square"):
        SegmentationMetrics.from_confusion(np.zeros((2, 3)))


def test_empty_confusion_gives_nan_not_crash() -> None:
    m = SegmentationMetrics.from_confusion(np.zeros((3, 3), dtype=np.int64))
    assert math.isnan(m.pixel_accuracy) and math.isnan(m.miou)
    assert m.to_dict()["miou"] is None
