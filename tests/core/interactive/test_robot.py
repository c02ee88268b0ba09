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
