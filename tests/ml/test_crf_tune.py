"""CRF tuning on real photos with truth: recovers known-good settings, never saves a CRF worse than none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from segstudio.core.probabilities import save_probabilities
from segstudio.core.project import Project, Status
from segstudio.ml.coarse import coarse_probabilities
from segstudio.ml.crf import CRFParams, load_params, refine, upsampled_labels
from segstudio.ml.crf_project import TUNE_REPORT_KEY, project_crf, tunable_count, tune_project
from segstudio.ml.crf_tune import TuneSample, boundary_band, decide, split_keys, tune
from segstudio.ml.selection import Estimate

KNOWN = CRFParams(bilateral_sxy=40, bilateral_srgb=5, bilateral_compat=5, gaussian_sxy=3, gaussian_compat=3)
SPACE = {
    "bilateral_sxy": (20.0, 40.0, 100.0),
    "bilateral_srgb": (3.0, 5.0, 13.0),
    "bilateral_compat": (3.0, 5.0, 10.0),
}
START = CRFParams(bilateral_sxy=100, bilateral_srgb=13, bilateral_compat=10)


def _photos(shared_testdata, count=6, size=(240, 180)):
    folder = shared_testdata / "camvid_sample"
    out = []
    for i, path in enumerate(sorted((folder / "images").glob("*.png"))[:count]):
        image = cv2.resize(np.array(Image.open(path).convert("RGB")), size, interpolation=cv2.INTER_AREA)
        truth = cv2.resize(
            np.array(Image.open(folder / "masks" / path.name)), size, interpolation=cv2.INTER_NEAREST
        )
        out.append((path.stem, image, truth, coarse_probabilities(truth, 11, gain=4.0, blur=2.0, seed=i)))
    return out


def test_split_is_deterministic_and_holds_out_a_third():
    keys = [f"img{i}.png" for i in range(12)]
    tuning, held = split_keys(keys)
    assert (tuning, held) == split_keys(list(keys))
    assert len(held) == 4 and not set(tuning) & set(held) and sorted(tuning + held) == list(range(12))


def test_boundary_band_ignores_void():
    truth = np.zeros((20, 20), np.uint8)
    truth[:, 10:] = 1
    truth[0] = 255
    band = boundary_band(truth, radius=2)
    assert band[5, 8:12].all() and not band[5, :7].any() and not band[0].any()


def test_tuning_recovers_the_settings_the_data_was_made_with(shared_testdata):
    samples = [
        TuneSample(name, image, probs, refine(image, probs, KNOWN))
        for name, image, _, probs in _photos(shared_testdata)
    ]
    report = tune(samples, START, 11, space=SPACE)
    found = report.tuned_params
    assert (found.bilateral_sxy, found.bilateral_srgb, found.bilateral_compat) == (40, 5, 5)
    assert report.tuned.miou > 0.99 and report.keep
    assert report.current is not None and report.current.miou < report.tuned.miou


def _project_with_done_images(tmp_path, photos, truth_of):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, image, _, _ in photos:
        Image.fromarray(image).save(folder / f"{name}.png")
    project = Project.open(folder)
    by_name = {name: (image, truth, probs) for name, image, truth, probs in photos}
    for rec in project.images():
        image, truth, probs = by_name[rec.rel_path[:-4]]
        save_probabilities(project, rec.id, probs, truth.shape)
        project.save_mask(rec, truth_of(image, truth, probs), Status.DONE)
    return project


def test_never_saves_a_crf_worse_than_none_on_held_out_images(shared_testdata, tmp_path):
    photos = _photos(shared_testdata)
    # the corrected masks ARE the network's argmax: no CRF can beat "no CRF" on them
    project = _project_with_done_images(
        tmp_path, photos, lambda image, truth, probs: upsampled_labels(probs, *truth.shape)
    )
    with project:
        CRFParams()  # a project that had the CRF switched on before tuning
        from segstudio.ml.crf import save_params

        save_params(project, START)
        assert tunable_count(project) == 6
        report = tune_project(project, space=SPACE)
        gain = report.gain_estimate
        assert not report.keep and gain.value - gain.plus_minus <= 0 and report.reason
        assert project_crf(project) is None and load_params(project).enabled is False
        assert "turned off" in project.get_setting(TUNE_REPORT_KEY)["summary"]


def test_tuning_saves_settings_that_beat_no_crf(shared_testdata, tmp_path):
    photos = _photos(shared_testdata)
    project = _project_with_done_images(
        tmp_path, photos, lambda image, truth, probs: refine(image, probs, KNOWN)
    )
    with project:
        report = tune_project(project, space=SPACE)
        assert report.keep and report.gain > 0
        gain = report.gain_estimate
        assert gain.n == report.held_out_images and gain.value - gain.plus_minus > 0
        assert f"± {100 * gain.plus_minus:.1f}" in report.summary()
        saved = project_crf(project)
        assert saved is not None and (saved.bilateral_sxy, saved.bilateral_srgb) == (40, 5)
        stored = project.get_setting(TUNE_REPORT_KEY)
        assert stored["keep"] and set(stored["held_out"]) == {"no_crf", "current", "tuned"}


def test_tuning_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        tune([], None, 3)


@pytest.mark.parametrize(
    ("gain", "keep", "why"),
    [
        (Estimate(0.0, 0.0, 4), False, "no setting beat"),  # +0.0 mIoU (0.461 -> 0.461): off
        (Estimate(-0.01, 0.005, 4), False, "no setting beat"),
        (Estimate(0.004, 0.01, 4), False, "within its uncertainty"),
        (Estimate(0.05, None, 1), False, "one held-out image"),
        (Estimate(None, None, 2), False, "no labelled pixels"),
        (Estimate(0.02, 0.01, 4), True, ""),
    ],
)
def test_the_crf_is_kept_only_for_a_gain_beyond_its_uncertainty(gain, keep, why):
    kept, reason = decide(gain)
    assert kept is keep and why in reason


def _confident_samples(count=6, size=(48, 64)):
    """Probabilities so sure of the true labels that no CRF setting changes a pixel: a zero gain."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(count):
        truth = np.zeros(size, np.uint8)
        truth[:, size[1] // 3 + i :] = 1
        image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        probs = np.full((2, *size), 1e-4, np.float32)
        probs[truth, *np.indices(size)] = 1.0 - 1e-4
        out.append(TuneSample(f"img{i}.png", image, probs, truth))
    return out


def test_zero_held_out_gain_keeps_the_crf_off_and_says_why():
    report = tune(_confident_samples(), None, 2, space={"bilateral_compat": (3.0, 10.0)})
    assert report.tuned.miou == report.none.miou and report.gain_estimate.value == 0.0
    assert not report.keep and "no setting beat" in report.reason
    text = report.summary()
    assert "+0.0 ± 0.0 mIoU points on 2 held-out image(s)" in text and text.endswith(
        "CRF turned off for this project"
    )
    assert report.to_dict()["gain"] == {"value": 0.0, "plus_minus": 0.0, "n": 2}
