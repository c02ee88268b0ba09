"""Proof that the trainer learns: from scratch on generated textured shapes, then fine-tuning on a
shifted appearance improves val mIoU on it. CPU, a small arch, tiny images: about a minute."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segstudio.ml.manifest import BaseSpec
from segstudio.ml.progress import ProgressWriter
from segstudio.ml.synthetic import make_shapes_dataset, write_shapes_manifest
from segstudio.ml.train import TrainConfig, train

ARCH = "lraspp_mobilenet_v3_large"
CHANCE_MIOU = 0.25  # four classes


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    """Train a model from scratch on the base style (shared by both tests: it is the expensive part)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("shapes")
    manifest = write_shapes_manifest(
        folder,
        train=96,
        val=24,
        size=64,
        style="base",
        seed=1,
        arch=ARCH,
        base=BaseSpec("scratch"),
        version="v1",
    )
    config = TrainConfig(
        epochs=12,
        batch=8,
        crop=64,
        lr=0.05,
        scale_min=0.75,
        scale_max=1.5,
        workers=0,
        min_iters_per_epoch=12,
        patience=0,
        device="cpu",
        seed=0,
    )
    writer = ProgressWriter(enabled=False)
    try:
        result = train(manifest, config, progress=writer)
    finally:
        torch.set_num_threads(previous)
    return result, writer.events


@pytest.mark.slow
def test_learns_textured_shapes_from_scratch(scratch_run):
    result, events = scratch_run
    assert result.reason == "completed"
    assert result.baseline_miou is not None and result.baseline_miou < CHANCE_MIOU  # untrained: near chance
    assert result.best_miou is not None and result.best_miou >= 0.6
    losses = [e["loss"] for e in events if e["event"] == "epoch"]
    assert losses[-1] < 0.5 * losses[0]
    # the saved best checkpoint is the model the metrics describe: predict with it and re-score
    from segstudio.core.metrics import SegmentationMetrics, confusion_matrix
    from segstudio.core.schemes import LabelScheme
    from segstudio.ml.spec import ModelSpec
    from segstudio.ml.synthetic import shapes_scheme_dict
    from segstudio.ml.weights import load_checkpoint, load_model

    scheme = LabelScheme.from_dict(shapes_scheme_dict())
    assert load_checkpoint(result.checkpoint).metrics["miou"] == pytest.approx(result.best_miou)
    loaded = load_model(ModelSpec(weights="file", path=str(result.checkpoint)), scheme, "cpu")
    images, masks = [x[96:] for x in make_shapes_dataset(120, 64, "base", seed=1)]
    mean = torch.tensor(loaded.normalization["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(loaded.normalization["std"]).view(1, 3, 1, 1)
    batch = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.inference_mode():
        pred = loaded.model(batch)["out"].argmax(1).numpy()
    miou = SegmentationMetrics.from_confusion(confusion_matrix(pred, np.stack(masks), 4)).miou
    assert miou == pytest.approx(result.best_miou, abs=1e-6)


@pytest.mark.slow
def test_fine_tuning_on_a_few_shifted_images_improves_val_miou(scratch_run, tmp_path):
    base_result, _ = scratch_run
    manifest = write_shapes_manifest(
        tmp_path,
        train=6,
        val=24,
        size=64,
        style="shifted",
        seed=7,
        arch=None,
        base=BaseSpec("checkpoint", str(base_result.checkpoint), "v1"),
        version="v2",
    )
    config = TrainConfig(
        epochs=8,
        batch=6,
        crop=64,
        lr=0.02,
        scale_min=0.75,
        scale_max=1.5,
        workers=0,
        min_iters_per_epoch=8,
        patience=0,
        device="cpu",
        seed=0,
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(manifest, config, progress=ProgressWriter(enabled=False))
    finally:
        torch.set_num_threads(previous)
    assert result.parent == "v1"
    assert result.baseline_miou is not None and result.best_miou is not None
    # the base model does poorly on the new appearance; six corrected images fix much of it
    assert result.best_miou >= result.baseline_miou + 0.15, (result.baseline_miou, result.best_miou)
