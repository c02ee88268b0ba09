"""Picking polygon vertices and edges for editing before the polygon is committed."""

from __future__ import annotations

from segstudio.core.interactive.polygon import pick_edge, pick_vertex

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]


def test_pick_vertex_nearest_within_radius():
    assert pick_vertex(SQUARE, 9.0, 1.0, 2.0) == 1
    assert pick_vertex(SQUARE, 5.0, 5.0, 2.0) is None
    assert pick_vertex([], 0, 0, 5) is None


def test_pick_edge_includes_the_closing_edge():
    assert pick_edge(SQUARE, 5.0, 0.5, 1.0) == 0  # insert at index 1
    assert pick_edge(SQUARE, 0.4, 5.0, 1.0) == 3  # closing edge (3 -> 0): insert at the end
    assert pick_edge(SQUARE, 5.0, 5.0, 1.0) is None
    assert pick_edge([(0.0, 0.0), (4.0, 0.0)], 2.0, 0.5, 1.0) == 0
