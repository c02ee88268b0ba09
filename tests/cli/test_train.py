"""`segstudio train PROJECT` registers versions (v1, v2 with parent), `segstudio eval` prints their metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest

from segstudio.cli import main
from segstudio.core.project import Project, Status
from segstudio.core.schemes import LabelScheme
from segstudio.ml.synthetic import make_shapes_dataset, shapes_scheme_dict
from segstudio.ml.weights import load_checkpoint

ARCH = "lraspp_mobilenet_v3_large"
# --max-side 40 < the 48 px photos: eval must use the cap the version was trained with to match its numbers
FAST = [
    "--epochs",
    "2",
    "--crop",
    "48",
    "--batch",
    "4",
    "--workers",
    "0",
    "--min-iters",
    "3",
    "--device",
    "cpu",
    "--lr",
    "0.02",
    "--max-side",
    "40",
]


@pytest.fixture
def project_folder(tmp_path):
    """A project of 14 generated images, 12 corrected and done, split by the project's stable split."""
    folder = tmp_path / "photos"
    folder.mkdir()
    images, masks = make_shapes_dataset(14, 48, seed=5)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"img{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    with Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict())) as project:
        project.set_setting("val_fraction", 0.3)
        for rec in project.images()[:12]:
            project.save_mask(rec, masks[int(rec.rel_path[3:5])], status=Status.DONE)
    return folder


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_train_registers_versions_and_eval_reports_them(project_folder, capsys):
    assert main(["train", str(project_folder), "--base", "scratch", "--arch", ARCH, *FAST]) == 0
    out, err = capsys.readouterr()
    events = _events(out)
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert "saved v1" in err
    with Project.open(project_folder) as project:
        (v1,) = project.model_versions()
        assert v1.version == "v1" and v1.arch == ARCH and v1.parent is None
        assert v1.checkpoint_path == project.models_dir / "v1" / "best.pt"
        assert v1.metrics["miou"] == events[-1]["best_miou"]
        assert project.active_model_version().version == "v1"  # the first model becomes the project's
        ckpt = load_checkpoint(v1.checkpoint_path)
        assert ckpt.version == "v1" and ckpt.class_names == project.scheme.names
        train_n = events[0]["train_images"]
        val_n = events[0]["val_images"]
        done = project.images(status=Status.DONE)
        assert train_n == sum(r.split == "train" for r in done) and val_n == sum(
            r.split == "val" for r in done
        )
        assert val_n > 0

    # fine-tune the active model: v2, whose parent is v1
    assert main(["train", str(project_folder), *FAST]) == 0
    out, _ = capsys.readouterr()
    assert _events(out)[0]["base"] == "model v1"
    with Project.open(project_folder) as project:
        v2 = project.get_model_version("v2")
        assert v2 is not None and v2.parent == "v1"
        active = project.active_model_version().version
        expected_miou = project.get_model_version(active).metrics["miou"]

    # eval re-measures the active version on the val split: the same number the trainer recorded
    assert main(["eval", str(project_folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == active and report["split"] == "val"
    assert report["max_side"] == 40  # the cap the version was trained with (FAST), not the 1024 default
    assert report["miou"] == pytest.approx(expected_miou, abs=1e-9)
    assert "crf" not in report  # a new project's CRF is off: eval compares only when asked or when on
    assert main(["eval", str(project_folder), "--json", "--crf"]) == 0
    crf = json.loads(capsys.readouterr().out)["crf"]
    assert set(crf) == {"params", "no_crf", "with_crf"} and crf["no_crf"]["images"] == report["images"]
    assert 0.0 <= crf["with_crf"]["miou"] <= 1.0 and 0.0 <= crf["with_crf"]["boundary_accuracy"] <= 1.0
    assert main(["eval", str(project_folder), "--version", "v1"]) == 0
    table = capsys.readouterr().out
    for word in (
        "model v1",
        "long side <= 40 px",
        "background",
        "disk",
        "mIoU",
        "FWIoU",
        "pixel acc",
        "mean acc",
    ):
        assert word in table


def test_train_needs_done_images(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), make_shapes_dataset(1, 32)[0][0])
    assert main(["train", str(folder), "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert "no training images" in err
    assert _events(out)[-1]["event"] == "error"


def test_train_needs_a_project_or_a_manifest(capsys):
    assert main(["train"]) == 2
    assert "either a project folder or --manifest" in capsys.readouterr().err


def test_eval_without_versions_says_what_to_do(project_folder, capsys):
    assert main(["eval", str(project_folder)]) == 2
    assert "segstudio train" in capsys.readouterr().err


def test_train_refuses_a_project_open_elsewhere(project_folder):
    with Project.open(project_folder):
        result = subprocess.run(
            [sys.executable, "-m", "segstudio", "train", str(project_folder), "--device", "cpu"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    assert result.returncode == 2
    assert "error" in result.stderr.lower()
    assert _events(result.stdout)[-1]["event"] == "error"


@pytest.mark.slow
def test_cancelled_project_run_is_registered_and_resume_continues_as_a_new_version(project_folder, capsys):
    import signal
    import time

    from segstudio.ml.weights import load_checkpoint as load

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segstudio",
            "train",
            str(project_folder),
            "--base",
            "scratch",
            "--arch",
            ARCH,
            *FAST,
            "--epochs",
            "40",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    resume_file = project_folder / ".segstudio" / "models" / "v1" / "resume.pt"
    try:
        deadline = time.monotonic() + 240
        while not resume_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert resume_file.exists()
        process.send_signal(signal.SIGTERM)  # Ctrl-C / kill: stop after this batch, keep the best
        out, err = process.communicate(timeout=240)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert _events(out)[-1]["reason"] == "cancelled"
    with Project.open(project_folder) as project:
        v1 = project.get_model_version("v1")
        assert v1 is not None  # the best checkpoint so far is kept and registered
        v1_weights = load(v1.checkpoint_path).state_dict
    assert resume_file.exists()

    assert main(["train", str(project_folder), "--resume", *FAST, "--epochs", "3"]) == 0
    events = _events(capsys.readouterr().out)
    assert events[0]["resumed_from"] >= 1 and events[0]["version"] == "v2"
    assert events[-1]["reason"] == "completed" and events[-1]["epochs_run"] == 3
    with Project.open(project_folder) as project:
        v2 = project.get_model_version("v2")
        assert v2 is not None and v2.checkpoint_path.parent.name == "v2"
        # v1's file was not overwritten by the continued run
        assert all(load(v1.checkpoint_path).state_dict[k].equal(t) for k, t in v1_weights.items())
    assert not resume_file.exists() and not (resume_file.parent.parent / "v2" / "resume.pt").exists()
