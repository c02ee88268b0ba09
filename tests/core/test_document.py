"""MaskDocument operations tested with plain numpy: paint, erase, fill, polygon, protect, undo."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.document import UNLABELED, MaskDocument, Protect
from segstudio.core.history import Box


def _doc(h: int = 100, w: int = 120) -> MaskDocument:
    return MaskDocument(np.full((h, w), UNLABELED, np.uint8))


def test_single_dab_paints_a_disc_of_the_radius():
    doc = _doc()
    box = doc.paint_stroke([(50, 40)], radius=5, value=3)
    assert box is not None
    assert doc.labels[40, 50] == 3
    assert doc.labels[40, 55] == 3 and doc.labels[40, 56] == UNLABELED
    assert doc.labels[45, 50] == 3 and doc.labels[46, 50] == UNLABELED
    assert doc.labels[44, 54] == UNLABELED  # corner outside the disc
    area = int((doc.labels == 3).sum())
    assert abs(area - np.pi * 5.5**2) < 15
    assert doc.dirty and doc.edited


def test_fast_drag_segments_leave_no_gaps():
    doc = _doc(100, 300)
    doc.begin_stroke()
    doc.paint_stroke([(10, 50), (150, 50)], radius=2, value=1)
    doc.paint_stroke([(150, 50), (290, 90)], radius=2, value=1)
    doc.end_stroke()
    assert (doc.labels[50, 10:151] == 1).all()
    # Along the diagonal segment every column between the two points is painted.
    cols = np.flatnonzero((doc.labels[:, 150:291] == 1).any(axis=0))
    assert len(cols) == 141
    assert doc.history.undo_count == 1  # one drag, one undo step


def test_erase_returns_pixels_to_unlabeled():
    doc = _doc()
    doc.labels  # noqa: B018
    doc.paint_stroke([(20, 20), (80, 20)], 4, 2)
    doc.paint_stroke([(50, 20)], 3, UNLABELED)  # the eraser paints "unlabeled"
    assert doc.labels[20, 50] == UNLABELED
    assert doc.labels[20, 30] == 2


def test_protect_unlabeled_only_keeps_existing_labels():
    doc = _doc()
    doc.paint_stroke([(30, 50)], 10, 1)
    doc.paint_stroke([(45, 50)], 10, 2, protect=Protect.unlabeled_only())
    assert doc.labels[50, 30] == 1 and doc.labels[50, 38] == 1  # class 1 untouched
    assert doc.labels[50, 50] == 2  # unlabeled area painted


def test_protect_only_class_paints_only_that_class():
    doc = _doc()
    doc.paint_stroke([(30, 50)], 10, 1)
    doc.paint_stroke([(70, 50)], 10, 4)
    doc.paint_stroke([(30, 50), (70, 50)], 12, 2, protect=Protect.only_class(1))
    assert doc.labels[50, 30] == 2
    assert doc.labels[50, 70] == 4  # other class protected
    assert doc.labels[50, 50] == UNLABELED  # unlabeled protected too


def test_flood_fill_fills_connected_same_label_region_only():
    labels = np.full((50, 50), UNLABELED, np.uint8)
    labels[:, 25] = 7  # a wall splits the unlabeled area in two
    doc = MaskDocument(labels)
    box = doc.flood_fill(5, 5, 3)
    assert box == Box(0, 0, 50, 25)
    assert (doc.labels[:, :25] == 3).all()
    assert (doc.labels[:, 25] == 7).all()
    assert (doc.labels[:, 26:] == UNLABELED).all()
    assert doc.history.undo_count == 1
    doc.undo()
    assert (doc.labels[:, :25] == UNLABELED).all()


def test_flood_fill_respects_protect_and_bounds():
    labels = np.full((20, 20), 1, np.uint8)
    doc = MaskDocument(labels)
    assert doc.flood_fill(3, 3, 2, protect=Protect.unlabeled_only()) is None
    assert (doc.labels == 1).all()
    assert doc.flood_fill(-1, 3, 2) is None
    assert not doc.dirty


def test_fill_polygon():
    doc = _doc()
    doc.fill_polygon([(10, 10), (60, 10), (60, 40), (10, 40)], 5)
    assert (doc.labels[10:41, 10:61] == 5).all()
    assert doc.labels[9, 30] == UNLABELED and doc.labels[41, 30] == UNLABELED
    assert doc.fill_polygon([(1, 1), (5, 5)], 5) is None


def test_replace_class_and_undo():
    doc = _doc()
    doc.paint_stroke([(20, 20)], 5, 1)
    doc.paint_stroke([(80, 80)], 5, 1)
    doc.paint_stroke([(50, 50)], 5, 2)
    before = doc.labels.copy()
    doc.replace_class(1, 3)
    assert not (doc.labels == 1).any()
    assert ((doc.labels == 3) == (before == 1)).all()
    assert (doc.labels == 2).sum() == (before == 2).sum()
    doc.undo()
    np.testing.assert_array_equal(doc.labels, before)


def test_undo_redo_and_change_callbacks():
    doc = _doc()
    boxes: list = []
    doc.add_listener(boxes.append)
    doc.begin_stroke()
    doc.paint_stroke([(10, 10), (30, 10)], 2, 1)
    doc.paint_stroke([(30, 10), (30, 40)], 2, 1)
    doc.end_stroke()
    painted = doc.labels.copy()
    assert len(boxes) == 2
    undo_box = doc.undo()
    assert undo_box is not None and boxes[-1] == undo_box
    assert (doc.labels == UNLABELED).all()
    doc.redo()
    np.testing.assert_array_equal(doc.labels, painted)
    assert doc.undo() is not None and doc.undo() is None


def test_late_prediction_goes_to_prediction_layer_and_accept_is_undoable():
    doc = _doc(20, 20)
    doc.paint_stroke([(5, 5)], 2, 1)
    edited = doc.labels.copy()
    seen: list[int] = []
    doc.add_prediction_listener(lambda: seen.append(1))
    pred = np.full((20, 20), 4, np.uint8)
    raw = np.full((20, 20), 6, np.uint8)
    doc.set_prediction(pred, np.full((20, 20), 200, np.uint8), raw)
    np.testing.assert_array_equal(doc.labels, edited)  # user's pixels untouched
    assert seen == [1]
    assert doc.diff_fraction() == pytest.approx(1.0)
    doc.use_raw_prediction = True
    doc.accept_prediction()
    assert (doc.labels == 6).all()
    doc.use_raw_prediction = False
    doc.accept_prediction()
    assert (doc.labels == 4).all()
    assert doc.diff_fraction() == 0.0
    doc.undo()
    doc.undo()
    np.testing.assert_array_equal(doc.labels, edited)
    with pytest.raises(ValueError):
        doc.set_prediction(np.zeros((3, 3), np.uint8))


def test_cancel_stroke_restores_pixels():
    doc = _doc()
    doc.begin_stroke()
    doc.paint_stroke([(10, 10), (90, 90)], 3, 1)
    doc.cancel_stroke()
    assert (doc.labels == UNLABELED).all()
    assert doc.history.undo_count == 0


def test_no_op_edits_do_not_dirty_or_record():
    doc = MaskDocument(np.full((10, 10), 2, np.uint8))
    assert doc.paint_stroke([(5, 5)], 3, 2) is None
    assert doc.replace_class(7, 1) is None
    assert not doc.dirty and doc.history.undo_count == 0


def test_class_counts():
    doc = _doc(10, 10)
    doc.fill_polygon([(0, 0), (4, 0), (4, 9), (0, 9)], 1)
    counts = doc.class_counts()
    assert counts[1] == 50 and counts[UNLABELED] == 50 and counts.sum() == 100


def test_reset_is_not_an_edit():
    doc = _doc(10, 10)
    seen: list = []
    doc.add_listener(seen.append)
    doc.reset(np.full((10, 10), 3, np.uint8))
    assert (doc.labels == 3).all()
    assert seen == [None]
    assert not doc.dirty and not doc.edited and doc.history.undo_count == 0
