"""The project's CRF: whether it is on, its settings, and tuning it on the project's corrected images.

One place decides what the worker, `segstudio predict` and `segstudio eval` use, so they agree:
`project_crf(project)` is the saved setting when there is one, else the new-project policy
(`DEFAULT_ENABLED`: off, because on the real photos with truth in the shared test data every published
setting lowered mIoU with DCNN-like probabilities; see README "Dense CRF" and `bench/crf_defaults.py`).
Tuning (`tune_project`) saves the tuned settings only when they beat "no CRF" on held-out images, else
saves the CRF as off; its report is kept under `TUNE_REPORT_KEY` for the GUI and `segstudio crf`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from segstudio.core.errors import ProjectError
from segstudio.core.logs import timed
from segstudio.core.probabilities import load_probabilities
from segstudio.core.task_handle import TaskHandle
from segstudio.ml.crf import SETTING_KEY, CRFParams, load_params, save_params
from segstudio.ml.crf_tune import TuneReport, TuneSample, tune

__all__ = [
    "DEFAULT_ENABLED",
    "MIN_TUNE_IMAGES",
    "TUNE_REPORT_KEY",
    "crf_change_message",
    "project_crf",
    "set_enabled",
    "tunable_count",
    "tune_project",
    "tuning_samples",
]

DEFAULT_ENABLED = False
MIN_TUNE_IMAGES = 10  # the GUI offers tuning once this many corrected images have stored probabilities
TUNE_REPORT_KEY = "crf_tune_report"


def project_crf(project: Any) -> CRFParams | None:
    """The CRF to run for this project (None = off): its saved setting, else the new-project policy."""
    if project.get_setting(SETTING_KEY) is None:
        return CRFParams() if DEFAULT_ENABLED else None
    params = load_params(project)
    return params if params.enabled else None


def set_enabled(project: Any, enabled: bool) -> CRFParams:
    """Turn the project's CRF on/off, keeping its other settings; returns what was saved."""
    params = replace(load_params(project), enabled=enabled)
    save_params(project, params)
    return params


def tuning_samples(project: Any, handle: TaskHandle | None = None) -> list[TuneSample]:
    """Done images with a corrected mask and stored probabilities (what tuning learns from)."""
    from segstudio.core.project import Status

    samples = []
    for rec in project.images(status=Status.DONE):
        if handle is not None:
            handle.check_cancelled()
        if rec.error or not project.has_mask(rec):
            continue
        stored = load_probabilities(project, rec.id, rec.shape)
        if stored is None:
            continue
        mask = project.load_mask(rec)
        samples.append(TuneSample(rec.rel_path, project.load_image(rec), stored.probabilities, mask))
    return samples


@timed("CRF tune")
def tune_project(
    project: Any, handle: TaskHandle | None = None, save: bool = True, **options: Any
) -> TuneReport:
    """Tune on the project's corrected images; with `save`, keep the result only if it beats no CRF."""
    samples = tuning_samples(project, handle)
    if len(samples) < 2:
        raise ProjectError(
            f"CRF tuning needs at least 2 done images with stored probabilities (found {len(samples)}); "
            "predict images, correct them and mark them done first"
        )
    current = project_crf(project)
    report = tune(samples, current, project.scheme.num_classes, handle, **options)
    if save:
        save_params(
            project, report.tuned_params if report.keep else replace(load_params(project), enabled=False)
        )
        project.set_setting(TUNE_REPORT_KEY, report.to_dict(list(project.scheme.names)))
    return report


def tunable_count(project: Any) -> int:
    """How many done images have a corrected mask and stored probabilities (cheap: file checks only)."""
    from segstudio.core.probabilities import probabilities_path
    from segstudio.core.project import Status

    return sum(
        1
        for rec in project.images(status=Status.DONE)
        if not rec.error and project.has_mask(rec) and probabilities_path(project, rec.id).is_file()
    )


def crf_change_message(labels: Any, raw_labels: Any) -> str:
    """'CRF changed N % of pixels' for the R toggle (raw = the prediction before the CRF, None without CRF)."""
    if raw_labels is None or getattr(raw_labels, "shape", None) != getattr(labels, "shape", None):
        return "This prediction was made without the dense CRF (Model → Dense CRF for this project)"
    return f"CRF changed {100.0 * float((labels != raw_labels).mean()):.2f} % of this image's pixels"
