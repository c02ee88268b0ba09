"""`segstudio predict`: writes predictions into the project, resumes, never touches corrected masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project, Status
from segstudio.core.schemes import voc_scheme
from segstudio.ml.models import build_model
from segstudio.ml.predict import Predictor
from segstudio.ml.spec import ModelSpec
from segstudio.ml.weights import load_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread", "offline_downloads")

ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture
def folder(tmp_path):
    from skimage import data

    images = tmp_path / "images"
    images.mkdir()
    for name, photo in (
        ("a_cat.png", data.chelsea()),
        ("b_astronaut.jpg", data.astronaut()),
        ("c_coffee.png", data.coffee()),
    ):
        Image.fromarray(photo).resize((96, 72)).save(images / name)
    (images / "d_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return images


def _predict(folder: str, *args: str) -> int:
    return main(["predict", folder, "--device", "cpu", "--precision", "float32", *args])


def test_predicts_into_the_project_and_resumes(folder, capsys):
    with Project.open(folder) as project:
        rec = project.get("a_cat.png")
        corrected = np.full(rec.shape, 3, np.uint8)
        project.save_mask(rec, corrected)
    code = _predict(str(folder), "--weights", "none", "--model", ARCH)
    err = capsys.readouterr().err
    assert code == 1  # one unreadable image
    assert "d_broken.jpg" in err and "predicted 3 image(s)" in err
    with Project.open(folder) as project:
        for name in ("a_cat.png", "b_astronaut.jpg", "c_coffee.png"):
            rec = project.get(name)
            assert rec.model_version == f"untrained:{ARCH}"
            prediction = project.load_prediction(rec)
            assert prediction is not None and prediction.labels.shape == (72, 96)
            assert prediction.confidence is not None
        assert project.get("b_astronaut.jpg").status == Status.PREDICTED
        cat = project.get("a_cat.png")
        assert cat.status == Status.IN_PROGRESS  # the user's work keeps its status
        assert np.array_equal(project.load_mask(cat), corrected)
    # a second run skips what this model version already predicted
    assert _predict(str(folder), "--weights", "none", "--model", ARCH) == 1
    assert "predicted 0 image(s); skipped 3 already predicted" in capsys.readouterr().err
    # --overwrite with --limit redoes just one, and still leaves the corrected mask alone
    assert _predict(str(folder), "--weights", "none", "--model", ARCH, "--overwrite", "--limit", "1") == 1
    assert "predicted 1 image(s)" in capsys.readouterr().err
    with Project.open(folder) as project:
        assert np.array_equal(project.load_mask(project.get("a_cat.png")), corrected)


def test_checkpoint_file_with_crf(folder, tmp_path, capsys):
    (folder / "d_broken.jpg").unlink()
    torch.manual_seed(5)
    model = build_model(ARCH, 21).eval()
    # trained with images capped at 64 px: predictions use the same cap unless --max-side says otherwise
    checkpoint = save_checkpoint(tmp_path / "mine.pt", model, ARCH, voc_scheme(), provenance={"max_side": 64})
    assert _predict(str(folder), "--weights", str(checkpoint), "--crf", "--crf-scale", "2") == 0
    err = capsys.readouterr().err
    assert "CRF on" in err and "max side 64," in err
    loaded = load_model(ModelSpec(weights="file", path=str(checkpoint)), voc_scheme())
    predictor = Predictor.from_loaded(loaded, precision="float32")
    with Project.open(folder) as project:
        rec = project.get("c_coffee.png")
        assert rec.model_version == loaded.version and rec.model_version.startswith("file:mine.pt:")
        stored = project.load_prediction(rec)
        expected = predictor.predict(project.load_image(rec))
    assert predictor.max_side == 64
    assert stored.raw_labels is not None
    assert (stored.raw_labels == expected.labels).mean() > 0.999  # raw = the model's labels before the CRF
    assert (
        _predict(str(folder), "--weights", str(checkpoint), "--overwrite", "--limit", "1", "--max-side", "0")
        == 0
    )
    assert "max side full," in capsys.readouterr().err


def test_same_size_images_are_batched_and_match_one_by_one(folder, capsys, monkeypatch):
    (folder / "d_broken.jpg").unlink()
    sizes: list[int] = []
    forward = Predictor._forward_batch
    monkeypatch.setattr(
        Predictor, "_forward_batch", lambda self, batch: sizes.append(batch.shape[0]) or forward(self, batch)
    )
    assert _predict(str(folder), "--weights", "none", "--model", ARCH, "--batch-size", "3") == 0
    assert sizes == [3]  # the three 96x72 photos in one forward pass
    assert "predicted 3 image(s)" in capsys.readouterr().err
    loaded = load_model(ModelSpec(arch=ARCH, weights="none"), voc_scheme())
    single = Predictor.from_loaded(loaded, precision="float32", batch_size=1)
    with Project.open(folder) as project:
        for name in ("a_cat.png", "b_astronaut.jpg", "c_coffee.png"):  # each result saved for its own image
            rec = project.get(name)
            expected = single.predict(project.load_image(rec)).labels
            assert (project.load_prediction(rec).labels == expected).mean() > 0.999


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--model", "segformer_b9"], "unknown model 'segformer_b9'; choose one of"),
        (["--weights", "no/such/file.pt"], "neither one of"),
        (["--crf-scale", "0.5"], "--crf-scale must be between"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(folder, capsys, args, message):
    assert _predict(str(folder), *args) == 2
    assert message in capsys.readouterr().err


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert _predict(str(tmp_path / "nowhere"), "--weights", "none") == 2
    assert "does not exist" in capsys.readouterr().err


def test_torchvision_weights_on_a_non_voc_project_are_refused(folder, capsys):
    from segstudio.core.schemes import cityscapes_scheme

    (folder / "d_broken.jpg").unlink()
    with Project.open(folder, scheme=cityscapes_scheme()):
        pass
    assert _predict(str(folder), "--weights", "torchvision", "--model", ARCH) == 2
    assert "21 Pascal VOC classes" in capsys.readouterr().err
