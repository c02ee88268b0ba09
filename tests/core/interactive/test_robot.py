"""The simulated annotator: where it clicks, and the manual polygon baseline on a real photo."""

from __future__ import annotations

import numpy as np

from segstudio.core.document import UNLABELED
from segstudio.core.interactive import create_engine
from segstudio.core.interactive.robot import largest_error, polygon_trace, run_image


def test_largest_error_picks_the_biggest_region_and_its_centre():
    truth = np.zeros((40, 60), np.uint8)
    truth[5:25, 5:25] = 1  # 400 px
    truth[30:35, 40:45] = 2  # 25 px
    labels = np.zeros_like(truth)
    spot = largest_error(labels, truth)
    assert spot is not None and spot.true_class == 1
    assert 13 <= spot.x <= 16 and 13 <= spot.y <= 16 and spot.radius >= 9
    truth[:] = UNLABELED  # void is never an error
    assert largest_error(labels, truth) is None


def test_ideal_tool_fixes_one_region_per_action():
    truth = np.zeros((40, 60), np.uint8)
    truth[5:25, 5:25] = 1
    truth[30:35, 40:45] = 2
    trace = run_image(
        "ideal", np.zeros((40, 60, 3), np.uint8), truth, np.full_like(truth, UNLABELED), target=1.0
    )
    assert trace.actions_to(1.0) == 3 and len(trace.latency) == 3


def test_polygon_baseline_and_click_robot_on_voc(voc):
    image, truth = voc("2011_000006")
    empty = np.full(truth.shape, UNLABELED, np.uint8)
    poly = polygon_trace(truth, empty)
    assert poly.accuracy[-1] >= 0.97
    assert 60 <= poly.actions_to(0.9) <= 400  # one click per vertex; measured 108
    engine = create_engine("superpixel")
    engine.prepare(image)
    clicks = run_image("click", image, truth, empty, engine=engine, target=0.9, max_actions=60)
    assert clicks.accuracy[-1] > clicks.accuracy[0]
    assert clicks.actions_to(0.9) is not None and clicks.actions_to(0.9) < poly.actions_to(0.9)


def test_model_guesses_are_not_trusted_as_finished():
    from segstudio.core.interactive.robot import confirmed_labels

    prediction = np.array([[1, 1, 2]], np.uint8)
    labels = np.array([[1, 3, 2]], np.uint8)  # the user changed the middle pixel only
    assert confirmed_labels(labels, prediction).tolist() == [[UNLABELED, 3, UNLABELED]]
    assert confirmed_labels(labels, None) is labels


def test_collateral_damage_is_counted_per_action():
    """A brush dab that covers an error region and a finished neighbour: the neighbour's pixels it
    relabels are counted as made wrong."""
    truth = np.zeros((40, 60), np.uint8)
    truth[10:30, 10:30] = 1
    start = truth.copy()
    start[15:25, 15:25] = 0  # a 10x10 hole the robot fixes with a disc brush (radius 5, so it stays inside)
    trace = run_image("brush", np.zeros((40, 60, 3), np.uint8), truth, start, target=1.0, max_actions=1)
    assert trace.changed[0] > 0 and trace.spoiled == [0] and trace.spoiled_fraction == [0.0]
    wide = np.zeros_like(truth)
    wide[20:22, 0:60] = 1  # a stripe across object and background: the background part is spoiled
    trace = run_image("ideal", np.zeros((40, 60, 3), np.uint8), wide, truth, target=1.0, max_actions=3)
    assert all(s == 0 for s in trace.spoiled)  # the ideal tool never spoils


def test_human_robot_judges_one_click_by_the_object_and_the_rest():
    """A made-up engine that floods the whole image: the human robot reports the flood as changed area
    far beyond the object's, and the rest of the image losing accuracy."""
    from segstudio.core.interactive.engines import Engine
    from segstudio.core.interactive.robot import human_actions

    class Flood(Engine):
        def _region(self, prompts, active_class, barrier):
            return np.ones(self.image.shape[:2], bool)

    truth = np.zeros((60, 80), np.uint8)
    truth[20:40, 20:40] = 1  # the object: 400 px
    start = np.zeros_like(truth)  # the pre-annotation missed it
    engine = Flood()
    engine.prepare(np.zeros((60, 80, 3), np.uint8))
    (click,) = human_actions(engine, truth, start, min_area=100, kinds=("click",))
    assert click.area == 400 and click.true_class == 1 and click.iou_before == 0.0
    assert click.outside_before == 1.0
    # with no confidence the model's labels count as sure: the limit keeps the flood near the click
    assert click.changed <= 2 * click.area and click.outside_after >= 0.99
    assert click.iou_after > 0
