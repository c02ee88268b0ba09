"""Model selection with few images: bootstrap uncertainty, the keep/activate rules, the minimum val split."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.metrics import SegmentationMetrics
from segstudio.core.project import Project, Status
from segstudio.core.schemes import LabelScheme
from segstudio.ml.selection import (
    Estimate,
    batched_miou,
    beats_start,
    format_estimate,
    gain_estimate,
    keeps_version,
    miou_estimate,
    reserve_val_images,
    val_target,
)
from segstudio.ml.synthetic import shapes_scheme_dict


def _random_cms(n: int, classes: int = 4, seed: int = 0, noise: float = 0.3) -> np.ndarray:
    """Per-image confusion matrices of a model that is right with probability 1 - noise, varying per image."""
    rng = np.random.default_rng(seed)
    cms = np.zeros((n, classes, classes), dtype=np.int64)
    for i in range(n):
        target = rng.integers(0, classes, 2000)
        wrong = rng.random(2000) < rng.uniform(0, 2 * noise)
        pred = np.where(wrong, rng.integers(0, classes, 2000), target)
        np.add.at(cms[i], (target, pred), 1)
    return cms


def test_batched_miou_matches_core_metrics():
    cms = _random_cms(5, classes=5, seed=3)
    cms[1, 4, :] = 0
    cms[1, :, 4] = 0  # a class absent from one image is skipped, as in core.metrics
    expected = [SegmentationMetrics.from_confusion(cm).miou for cm in cms]
    assert batched_miou(cms) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(batched_miou(np.zeros((3, 3))))


def test_uncertainty_shrinks_with_more_images_and_is_zero_for_identical_models():
    few, many = miou_estimate(_random_cms(4, seed=1)), miou_estimate(_random_cms(64, seed=1))
    assert few.n == 4 and many.n == 64
    assert 0 < many.plus_minus < few.plus_minus
    pooled = SegmentationMetrics.from_confusion(_random_cms(4, seed=1).sum(0)).miou
    assert few.value == pytest.approx(pooled)
    same = gain_estimate(_random_cms(6, seed=2), _random_cms(6, seed=2))
    assert same.value == 0 and same.plus_minus == 0
    assert miou_estimate(np.zeros((0, 4, 4))) == Estimate(None, None, 0)
    assert miou_estimate(_random_cms(1)).plus_minus is None  # one image: no spread to measure


def test_paired_gain_is_tighter_than_the_two_separate_intervals():
    """A model that is better on every image by a little: the paired interval sees it, separate ones do not."""
    start = _random_cms(8, seed=4, noise=0.4)
    new = start.copy()
    for cm in new:  # move 5 % of every class's errors onto the diagonal
        off = cm - np.diag(np.diag(cm))
        fix = off // 20
        cm -= fix
        cm[np.diag_indices_from(cm)] += fix.sum(1)
    gain = gain_estimate(start, new)
    assert gain.value > 0 and gain.plus_minus < gain.value
    assert miou_estimate(start).plus_minus > gain.value  # separately, the difference drowns in image spread


def test_keep_and_activate_rules():
    assert (
        beats_start(0.40, 0.45) is False
        and beats_start(0.45, 0.45) is True
        and beats_start(None, 0.4) is None
    )
    assert not keeps_version("cancelled", 0.396, 0.446)  # cancelled before it beat its start: no version
    assert keeps_version("cancelled", 0.50, 0.446)
    assert keeps_version("cancelled", 0.50, None)  # no val split: nothing says it is worse
    assert keeps_version("completed", 0.396, 0.446)  # a finished run is kept (just not activated)


def test_format_estimate():
    assert format_estimate(Estimate(0.4712, 0.0321, 8)) == "47.1 ± 3.2 % on 8 images"
    assert (
        format_estimate({"value": 0.025, "plus_minus": 0.031, "n": 19}, signed=True)
        == "+2.5 ± 3.1 points on 19 images"
    )
    assert format_estimate(Estimate(-0.05, None, 1), signed=True) == "-5.0 points on 1 image"
    assert format_estimate(None) == "n/a"


def test_val_target_is_a_minimum_but_at_most_a_third():
    assert [val_target(n) for n in (0, 2, 3, 12, 20, 24, 100)] == [0, 0, 1, 4, 6, 8, 8]


@pytest.fixture
def project(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(30):
        cv2.imwrite(str(folder / f"img{index:02d}.png"), np.full((8, 8, 3), index * 8, np.uint8))
    with Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict())) as project:
        project.set_setting("val_fraction", 0.0)  # every image starts in train: only the minimum moves some
        yield project


def _mark_done(project, records):
    for rec in records:
        project.save_mask(rec, np.zeros((8, 8), np.uint8), status=Status.DONE)


def test_reserve_tops_val_up_stably_and_prefers_images_no_version_trained_on(project, tmp_path):
    records = project.images()
    _mark_done(project, records[:12])
    moved = reserve_val_images(project)
    assert len(moved) == 4  # 12 done: a third
    assert {r.rel_path for r in project.images(split="val")} == set(moved)
    assert reserve_val_images(project) == []  # stable: nothing moves twice

    ckpt = tmp_path / "v1.pt"
    ckpt.write_bytes(b"x")
    project.add_model_version("v1", ckpt, "lraspp_mobilenet_v3_large", {"miou": 0.5})
    newest = project.get_model_version("v1").created_at
    _mark_done(project, records[12:24])  # 24 done now: val should hold 8
    later = {r.rel_path for r in records[12:24]}
    moved = reserve_val_images(project)
    assert len(moved) == 4 and set(moved) <= later  # images marked done after v1: v1 never trained on them
    assert all(r.updated_at > newest for r in project.images(split="val") if r.rel_path in moved)
    assert len(project.images(status=Status.DONE, split="val")) == 8
