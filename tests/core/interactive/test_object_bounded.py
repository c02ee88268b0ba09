"""An object-bounded engine (the learned click model: trained on objects, crop-limited) is not cut to
the click's window on a pre-annotated mask; a colour engine still is (issue #21: from the model's
prediction every engine ended at 66-70 % pixel accuracy because each click fixed a tiny area)."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.interactive import ClickSession
from segstudio.core.interactive.engines import ENGINES, Engine
from segstudio.core.interactive.evidence import MaskEvidence
from segstudio.core.interactive.extent import MAX_RADIUS

SIZE = 100
ROAD, CAR, PAVEMENT = 1, 2, 3  # the model says road left, car right; the truth under the click: pavement


class _LeftHalf(Engine):
    """Answers the left half (what the model called road) minus the engine's barrier: a stand-in for
    a click model that found the whole object."""

    name = "left-half"

    def _region(self, prompts, active_class, barrier):
        region = np.zeros((SIZE, SIZE), bool)
        region[:, : SIZE // 2] = True
        return region if barrier is None else region & ~barrier


class _BoundedLeftHalf(_LeftHalf):
    object_bounded = True


def _evidence() -> MaskEvidence:
    prediction = np.full((SIZE, SIZE), ROAD, np.uint8)
    prediction[:, SIZE // 2 :] = CAR
    return MaskEvidence(prediction.copy(), prediction, np.full((SIZE, SIZE), 255, np.uint8))  # sure


def _click(engine_cls) -> np.ndarray:
    engine = engine_cls()
    engine.prepare(np.full((SIZE, SIZE, 3), 128, np.uint8))  # flat: no colour edge bounds the window
    return ClickSession(engine, PAVEMENT, _evidence()).click(20, 50)


def test_an_object_bounded_engines_region_is_not_cut_to_the_click_window():
    region = _click(_BoundedLeftHalf)
    assert region[:, : SIZE // 2].all()  # the whole object, 30 px and more from the click included
    assert not region[:, SIZE // 2 :].any()  # the confident car guess stays a barrier (rule 1)


def test_a_colour_engines_region_is_still_cut_to_the_click_window():
    region = _click(_LeftHalf)
    radius = MAX_RADIUS * SIZE  # the flat image's largest window
    assert region[50, 20]
    assert region.sum() <= np.pi * (radius + 1) ** 2  # the same engine answer, cut to the disc
    assert not region[0, 0] and not region[99, 20]


def test_only_the_learned_engine_declares_itself_object_bounded():
    import segstudio.ml.click_engine as click_engine

    assert click_engine.LearnedEngine.object_bounded
    for name in ("superpixel", "grabcut"):
        assert not ENGINES[name]().object_bounded, name
    crf = pytest.importorskip("segstudio.ml.interactive_crf")
    assert not crf.CRFClickEngine.object_bounded


def _corrected_evidence() -> MaskEvidence:
    """The model said road on the left half; the user corrected two strips of it to car: rows 0-9 (far
    from the click) and rows 45-54 (under the click at (20, 50))."""
    prediction = np.full((SIZE, SIZE), ROAD, np.uint8)
    prediction[:, SIZE // 2 :] = CAR
    labels = prediction.copy()
    labels[0:10, : SIZE // 2] = CAR
    labels[45:55, : SIZE // 2] = CAR
    return MaskEvidence(labels, prediction, np.full((SIZE, SIZE), 100, np.uint8))  # unsure guesses


def test_an_object_bounded_click_keeps_the_users_corrections_away_from_the_click():
    """The learned engine's region starts from the model's region, which may cover what the user already
    relabelled: it keeps the corrections, except near the click (the user clicked on their own mistake,
    which need not be all of the correction it touches)."""
    engine = _BoundedLeftHalf()
    engine.prepare(np.full((SIZE, SIZE, 3), 128, np.uint8))
    region = ClickSession(engine, PAVEMENT, _corrected_evidence()).click(20, 50)
    assert not region[0:10].any()  # the far correction is the user's work: kept
    assert region[45:55, 15:26].all()  # the clicked one, near the click: the user overrides it
    assert not region[45:55, 20 + int(MAX_RADIUS * SIZE) + 2 : SIZE // 2].any()  # beyond the window: kept
    assert region[10:45, : SIZE // 2].all() and region[55:, : SIZE // 2].all()  # the model's guesses
    # a colour engine is not changed by this rule (its click window already bounds it)
    colour = _LeftHalf()
    colour.prepare(np.full((SIZE, SIZE, 3), 128, np.uint8))
    assert ClickSession(colour, PAVEMENT, _corrected_evidence()).click(20, 50)[50, 20]
