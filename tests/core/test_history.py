"""Undo history of region atoms: one step per action, bounds by count and bytes, per-image store."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.history import Box, History, HistoryStore, Step, make_atom


def _edit(labels: np.ndarray, history: History, box: Box, value: int) -> None:
    before = labels.copy()
    labels[box.slices] = value
    atom = make_atom(before, labels, box)
    assert atom is not None
    history.push(Step((atom,)))


def test_make_atom_shrinks_to_changed_pixels_and_skips_no_change():
    before = np.full((50, 60), 255, np.uint8)
    after = before.copy()
    after[10:12, 20:25] = 3
    atom = make_atom(before, after, Box(0, 0, 50, 60))
    assert atom is not None
    assert atom.box == Box(10, 20, 12, 25)
    assert atom.old.shape == atom.new.shape == (2, 5)
    assert (atom.new == 3).all() and (atom.old == 255).all()
    assert make_atom(before, before.copy(), Box(0, 0, 50, 60)) is None


def test_undo_redo_restores_exact_values():
    labels = np.full((40, 40), 255, np.uint8)
    history = History()
    _edit(labels, history, Box(0, 0, 10, 10), 1)
    after_first = labels.copy()
    _edit(labels, history, Box(5, 5, 20, 20), 2)
    after_second = labels.copy()

    assert history.undo(labels) is not None
    np.testing.assert_array_equal(labels, after_first)
    assert history.undo(labels) is not None
    assert (labels == 255).all()
    assert history.undo(labels) is None

    history.redo(labels)
    np.testing.assert_array_equal(labels, after_first)
    history.redo(labels)
    np.testing.assert_array_equal(labels, after_second)
    assert history.redo(labels) is None


def test_new_edit_after_undo_clears_redo():
    labels = np.full((10, 10), 255, np.uint8)
    history = History()
    _edit(labels, history, Box(0, 0, 2, 2), 1)
    history.undo(labels)
    assert history.can_redo
    _edit(labels, history, Box(5, 5, 6, 6), 2)
    assert not history.can_redo
    assert history.undo_count == 1


def test_at_least_100_steps_by_default():
    labels = np.full((20, 200), 255, np.uint8)
    history = History()
    for i in range(150):
        _edit(labels, history, Box(0, i, 20, i + 1), i % 10)
    assert history.undo_count == 150
    for _ in range(150):
        assert history.undo(labels) is not None
    assert (labels == 255).all()


def test_step_count_bound_drops_oldest():
    labels = np.full((10, 10), 255, np.uint8)
    history = History(max_steps=3)
    for i in range(5):
        _edit(labels, history, Box(i, 0, i + 1, 10), i)
    assert history.undo_count == 3
    while history.undo(labels) is not None:
        pass
    # The two oldest rows were dropped from history, so their values remain.
    assert (labels[0] == 0).all() and (labels[1] == 1).all()
    assert (labels[2:5] == 255).all()


def test_byte_bound_drops_oldest_and_accounts_bytes():
    labels = np.full((100, 100), 255, np.uint8)
    history = History(max_bytes=5_000)
    for i in range(10):
        _edit(labels, history, Box(i * 10, 0, i * 10 + 10, 100), i)  # 2 * 1000 bytes each
    assert history.nbytes <= 5_000
    assert history.undo_count == 2
    history.undo(labels)
    assert history.nbytes == 4_000  # undone steps still count (they can be redone)


def test_newest_step_kept_even_if_larger_than_budget():
    labels = np.full((100, 100), 255, np.uint8)
    history = History(max_bytes=100)
    _edit(labels, history, Box(0, 0, 100, 100), 1)
    assert history.undo_count == 1


def test_store_keeps_histories_per_image_and_trims_lru():
    store = HistoryStore(max_bytes_total=10_000)
    a_labels = np.full((100, 100), 255, np.uint8)
    b_labels = np.full((100, 100), 255, np.uint8)
    _edit(a_labels, store.get("a.jpg"), Box(0, 0, 30, 100), 1)  # 6000 bytes
    store.enforce_budget()
    _edit(b_labels, store.get("b.jpg"), Box(0, 0, 30, 100), 2)  # 6000 bytes
    assert store.get("b.jpg").undo_count == 1
    store.enforce_budget()
    assert store.nbytes <= 10_000
    assert "a.jpg" not in store  # least recently used history was dropped
    assert store.get("b.jpg").undo_count == 1


def test_store_returns_same_history_for_same_image():
    store = HistoryStore()
    assert store.get("x.png") is store.get("x.png")
    assert store.get("x.png") is not store.get("y.png")


def test_box_helpers():
    assert Box(0, 0, 5, 5).union(Box(3, 4, 10, 6)) == Box(0, 0, 10, 6)
    assert Box(-3, -2, 50, 70).clip((10, 20)) == Box(0, 0, 10, 20)
    assert Box(2, 2, 2, 5).empty
    with pytest.raises(ValueError):
        History(max_steps=0)
