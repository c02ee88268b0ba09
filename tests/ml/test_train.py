"""Trainer units: schedule, loss, metrics wiring (hand-computed), starting points, stopping rules, protocol."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.core.schemes import ClassDef, LabelScheme
from segstudio.ml import train_loop
from segstudio.ml.augment import AugmentConfig, eval_transform
from segstudio.ml.data import ArrayDataset
from segstudio.ml.evaluate import confusion_matrix_torch, evaluate, metrics_record
from segstudio.ml.manifest import BaseSpec, ManifestError
from segstudio.ml.models import build_model, class_dependent_keys
from segstudio.ml.progress import ProgressWriter, parse_progress_line
from segstudio.ml.synthetic import write_shapes_manifest
from segstudio.ml.train import (
    TrainConfig,
    TrainingError,
    build_start_model,
    loss_fn,
    poly_factor,
    state_hash,
    train,
)
from segstudio.ml.weights import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "lraspp_mobilenet_v3_large"


def _scheme(*names: str) -> LabelScheme:
    return LabelScheme("t", tuple(ClassDef(n, (i * 40 % 256, 0, 0)) for i, n in enumerate(names)))


def _tiny_settings(**overrides):
    values = dict(
        epochs=1,
        batch=2,
        crop=32,
        workers=0,
        min_iters_per_epoch=2,
        scale_min=0.75,
        scale_max=1.25,
        device="cpu",
        lr=0.01,
    )
    values.update(overrides)
    return TrainConfig(**values)


# ------------------------------------------------------------------------------------ schedule, loss


def test_poly_factor():
    assert poly_factor(0.0) == 1.0
    assert poly_factor(1.0) == 0.0
    assert poly_factor(0.5) == pytest.approx(0.5**0.9)
    assert poly_factor(2.0) == 0.0 and poly_factor(-1) == 1.0


def test_loss_ignores_255_and_never_nans():
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, 255], [255, 255]]])
    loss = loss_fn({"out": logits}, target, None, 0.5)
    assert loss.item() == pytest.approx(np.log(3))  # one labelled pixel, uniform logits
    empty = loss_fn({"out": logits, "aux": logits}, torch.full((1, 2, 2), 255), None, 0.5)
    empty.backward()
    assert empty.item() == 0.0 and torch.isfinite(logits.grad).all()
    # the auxiliary loss is added with its weight
    with_aux = loss_fn({"out": logits, "aux": logits}, target, None, 0.5)
    assert with_aux.item() == pytest.approx(1.5 * np.log(3))


def test_weighted_loss_equals_torch_weighted_mean():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0] = 255
    weight = torch.tensor([0.5, 1.0, 2.0])
    expected = torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=255)
    assert loss_fn({"out": logits}, target, weight, 0.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_config_validation():
    with pytest.raises(TrainingError, match="at least 2"):
        TrainConfig(batch=1)
    with pytest.raises(TrainingError, match="unknown optimizer"):
        TrainConfig(optimizer="lion")
    with pytest.raises(ManifestError, match="unknown training setting"):
        TrainConfig.from_mapping({"epochz": 3})
    assert TrainConfig(optimizer="adamw").learning_rate == 1e-4
    assert TrainConfig().learning_rate == 0.01


# ------------------------------------------------------------------------------------ metrics wiring


def test_confusion_matrix_torch_matches_hand_count_and_core():
    from segstudio.core.metrics import confusion_matrix

    pred = torch.tensor([[0, 1], [1, 1]])
    target = torch.tensor([[0, 1], [255, 0]])
    cm = confusion_matrix_torch(pred, target, 2)
    assert cm.tolist() == [[1, 1], [0, 1]]  # rows = target, cols = prediction; 255 ignored
    assert np.array_equal(cm.numpy(), confusion_matrix(pred.numpy(), target.numpy(), 2))


class _ConstantModel(nn.Module):
    """Predicts class `cls` everywhere, at the input's resolution."""

    def __init__(self, num_classes: int, cls: int) -> None:
        super().__init__()
        self.num_classes, self.cls = num_classes, cls

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.zeros(x.shape[0], self.num_classes, *x.shape[-2:])
        logits[:, self.cls] = 1.0
        return {"out": logits}


def test_evaluate_metrics_against_hand_computed_values():
    masks = [np.array([[0, 0], [1, 255]], np.uint8), np.array([[1, 1], [2, 2]], np.uint8)]
    images = [np.zeros((2, 2, 3), np.uint8)] * 2
    dataset = ArrayDataset(images, masks, eval_transform(AugmentConfig()))
    cm = evaluate(_ConstantModel(3, 1), dataset, 3, torch.device("cpu"))
    assert cm.tolist() == [[0, 2, 0], [0, 3, 0], [0, 2, 0]]
    m = metrics_record(cm, ["a", "b", "c"])
    assert m["pixel_accuracy"] == pytest.approx(3 / 7)
    assert m["mean_pixel_accuracy"] == pytest.approx(1 / 3)
    assert m["per_class_iou"] == pytest.approx({"a": 0.0, "b": 3 / 7, "c": 0.0})
    assert m["miou"] == pytest.approx(1 / 7)
    assert m["fwiou"] == pytest.approx(9 / 49)
    assert m["labelled_pixels"] == 7


def test_evaluate_scores_full_resolution_masks_when_image_is_capped():
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 1
    dataset = ArrayDataset([np.zeros((8, 8, 3), np.uint8)], [mask], eval_transform(AugmentConfig(max_side=4)))
    assert dataset[0][0].shape == (3, 4, 4) and dataset[0][1].shape == (8, 8)
    cm = evaluate(_ConstantModel(2, 0), dataset, 2, torch.device("cpu"))
    assert cm.sum() == 64 and cm[0, 0] == 32 and cm[1, 0] == 32


# ------------------------------------------------------------------------------------ starting points


def test_classifier_rebuilt_and_matching_names_keep_their_rows(tmp_path):
    old_scheme = _scheme("sky", "road", "car")
    torch.manual_seed(1)
    old = build_model(ARCH, 3)
    path = save_checkpoint(tmp_path / "v1.pt", old, ARCH, old_scheme, version="v1")
    new_scheme = _scheme("car", "sky", "tree")
    warnings: list[str] = []
    model, arch, parent, _, norm = build_start_model(
        BaseSpec("checkpoint", str(path), "v1"), None, new_scheme, warn=warnings.append
    )
    assert arch == ARCH and parent == "v1" and norm["mean"]
    old_state, new_state = old.state_dict(), model.state_dict()
    keys = class_dependent_keys(ARCH) & set(new_state)
    assert keys
    for key in keys:
        assert torch.equal(new_state[key][0], old_state[key][2])  # car
        assert torch.equal(new_state[key][1], old_state[key][0])  # sky
    weight_keys = [k for k in keys if k.endswith("weight")]
    assert not any(
        torch.equal(new_state[k][2], old_state[k][i]) for k in weight_keys for i in range(3)
    )  # tree: fresh
    shared = [k for k in new_state if k not in keys and not k.endswith("num_batches_tracked")]
    assert all(torch.equal(new_state[k], old_state[k]) for k in shared)
    assert any("car, sky" in w for w in warnings)


def test_base_checkpoint_of_another_arch_is_refused(tmp_path):
    scheme = _scheme("a", "b")
    path = save_checkpoint(tmp_path / "c.pt", build_model(ARCH, 2), ARCH, scheme)
    with pytest.raises(TrainingError, match="drop --arch"):
        build_start_model(BaseSpec("checkpoint", str(path)), "deeplabv3_mobilenet_v3_large", scheme)


def test_auto_base_without_cached_weights_starts_from_scratch_with_a_warning():
    warnings: list[str] = []
    _, _, parent, description, _ = build_start_model(
        BaseSpec("auto"), ARCH, _scheme("a", "b"), warn=warnings.append
    )
    assert description == "scratch" and parent is None
    assert any("from scratch" in w for w in warnings)
    a = build_start_model(BaseSpec("scratch"), ARCH, _scheme("a", "b"), seed=3)[0]
    b = build_start_model(BaseSpec("scratch"), ARCH, _scheme("a", "b"), seed=3)[0]
    assert state_hash(a) == state_hash(b)  # deterministic start: same seed, same weights


def test_auto_base_uses_cached_torchvision_weights_and_keeps_matching_class_rows():
    """Starting point "torchvision weights when present": VOC rows of matching names are kept, others start fresh."""
    from segstudio.core.schemes import VOC_CLASSES
    from segstudio.ml.hub import cache_path
    from segstudio.ml.models import arch_info

    torch.manual_seed(4)
    published = build_model(ARCH, 21).state_dict()
    path = cache_path(arch_info(ARCH).published_weights)  # under the tests' isolated TORCH_HOME
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(published, path)
    scheme = _scheme("background", "cat", "road")
    model, arch, parent, description, _ = build_start_model(BaseSpec("auto"), ARCH, scheme)
    assert (arch, parent) == (ARCH, None) and description == "torchvision COCO_WITH_VOC_LABELS_V1"
    state = model.state_dict()
    cat = list(VOC_CLASSES).index("cat")
    for key in sorted(class_dependent_keys(ARCH)):
        assert torch.equal(state[key][0], published[key][0]) and torch.equal(
            state[key][1], published[key][cat]
        )
        assert not torch.equal(state[key][2], published[key][2])  # "road" is not a VOC class: fresh row
    backbone = [k for k in published if k.startswith("backbone.") and published[k].is_floating_point()]
    assert backbone and all(torch.equal(state[k], published[k]) for k in backbone)


# ------------------------------------------------------------------------------------ runs in-process


def test_freeze_backbone_trains_only_the_head_and_writes_a_versioned_checkpoint(tmp_path):
    manifest = write_shapes_manifest(tmp_path, train=6, val=2, size=32, arch=ARCH, version="v2")
    scheme = manifest.label_scheme()
    start = build_model(ARCH, scheme.num_classes)
    base = save_checkpoint(tmp_path / "base.pt", start, ARCH, scheme, version="v1")
    manifest.base = BaseSpec("checkpoint", str(base), "v1")
    stream = io.StringIO()
    result = train(
        manifest, _tiny_settings(freeze_backbone=True, max_side=200), progress=ProgressWriter(stream)
    )
    assert result.reason == "completed" and result.checkpoint is not None
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.provenance["max_side"] == 200  # inference on this version uses the same cap (test_weights)
    assert ckpt.version == "v2" and ckpt.parent == "v1" and ckpt.arch == ARCH
    assert ckpt.class_names == scheme.names
    assert ckpt.provenance["training_set_fingerprint"] == manifest.fingerprint()
    assert ckpt.metrics["miou"] == result.best_miou
    before = start.state_dict()
    backbone = [k for k in before if k.startswith("backbone.")]
    head = [k for k in before if k.startswith("classifier.") and k.endswith("weight")]
    assert all(torch.equal(ckpt.state_dict[k], before[k]) for k in backbone)  # frozen, BN stats included
    assert any(not torch.equal(ckpt.state_dict[k], before[k]) for k in head)
    events = [parse_progress_line(line) for line in stream.getvalue().splitlines()]
    assert all(e is not None for e in events)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"batch", "epoch", "val", "checkpoint"} <= set(kinds)
    assert [e["epoch"] for e in events if e["event"] == "val"] == [0, 1]  # baseline first
    batches = [e for e in events if e["event"] == "batch"]
    assert len(batches) >= 2 and all(e["images_per_s"] > 0 for e in batches)
    assert batches[0]["eta_s"] > 0 and batches[-1]["eta_s"] == 0  # the ETA counts down to the end of the run
    assert batches[-1]["iter"] == batches[-1]["iters"]
    assert not (tmp_path / "run" / "resume.pt").exists()  # completed: nothing to resume


def test_seed_and_deterministic_option_repeat_a_run_exactly(tmp_path):
    """The deterministic seed option: the same manifest and seed give bit-identical weights; another seed does not."""
    hashes = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        manifest = write_shapes_manifest(
            tmp_path / name, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch")
        )
        result = train(
            manifest,
            _tiny_settings(seed=seed, deterministic=True, baseline_eval=False),
            progress=ProgressWriter(enabled=False),
        )
        assert result.checkpoint is not None
        hashes.append(state_hash_of(load_checkpoint(result.checkpoint).state_dict))
        assert not torch.are_deterministic_algorithms_enabled()  # process-wide: restored after the run
    assert hashes[0] == hashes[1]
    assert hashes[2] != hashes[0]


def state_hash_of(state: dict[str, torch.Tensor]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_early_stopping_when_val_miou_stalls(tmp_path, monkeypatch):
    manifest = write_shapes_manifest(tmp_path, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    constant = np.array([[5, 1, 0, 0], [1, 5, 0, 0], [0, 0, 5, 1], [0, 0, 1, 5]])
    monkeypatch.setattr(
        train_loop, "evaluate", lambda *a, **k: np.stack([constant, constant])
    )  # 2 val images
    result = train(
        manifest,
        _tiny_settings(epochs=6, patience=2, baseline_eval=False),
        progress=ProgressWriter(enabled=False),
    )
    assert result.reason == "early_stop"
    assert result.epochs_run == 3 and result.best_epoch == 1


def test_time_budget_stops_and_keeps_a_checkpoint(tmp_path):
    manifest = write_shapes_manifest(tmp_path, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    result = train(
        manifest,
        _tiny_settings(epochs=50, time_budget_s=0.001, baseline_eval=False),
        progress=ProgressWriter(enabled=False),
    )
    assert result.reason == "time_budget" and result.epochs_run == 1
    assert result.checkpoint is not None and result.checkpoint.is_file()


def test_cancel_keeps_best_checkpoint_and_resume_state(tmp_path):
    manifest = write_shapes_manifest(tmp_path, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    calls = {"n": 0}

    def stop_in_second_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # 2 steps per epoch: epoch 1 completes, epoch 2 is cancelled mid-way

    writer = ProgressWriter(enabled=False)
    result = train(
        manifest,
        _tiny_settings(epochs=5, baseline_eval=False),
        progress=writer,
        should_stop=stop_in_second_epoch,
    )
    assert result.reason == "cancelled"
    assert result.checkpoint is not None and result.checkpoint.is_file()
    assert (tmp_path / "run" / "resume.pt").is_file()  # an interrupted run can be resumed
    assert writer.events[-1]["event"] == "done" and writer.events[-1]["reason"] == "cancelled"
    resumed = train(
        manifest,
        _tiny_settings(epochs=3, baseline_eval=False),
        progress=ProgressWriter(enabled=False),
        resume=True,
    )
    assert resumed.reason == "completed" and resumed.epochs_run == 3
    assert not (tmp_path / "run" / "resume.pt").exists()


def test_a_diverged_run_stops_with_a_clear_error_and_keeps_its_last_good_files(tmp_path, monkeypatch):
    from segstudio.core.errors import CheckpointError
    from segstudio.ml import train as train_module

    manifest = write_shapes_manifest(tmp_path, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    real_epoch = train_module.train_one_epoch

    def diverging_epoch(parts, config, epoch, *args, **kwargs):
        outcome = real_epoch(parts, config, epoch, *args, **kwargs)
        if epoch == 2:  # what an exploding learning rate does to the weights
            with torch.no_grad():
                next(p for p in parts.module.parameters() if p.dim() > 1).fill_(float("nan"))
        return outcome

    monkeypatch.setattr(train_module, "train_one_epoch", diverging_epoch)
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match=r"refused to save .*NaN or infinite.*lower learning rate"):
        train(manifest, _tiny_settings(epochs=4, baseline_eval=False), progress=ProgressWriter(enabled=False))
    best = load_checkpoint(run / train_module.BEST_NAME)  # epoch 1's weights: finite, loadable
    assert all(torch.isfinite(v).all() for v in best.state_dict.values() if v.is_floating_point())
    resume = torch.load(run / train_module.RESUME_NAME, weights_only=True)
    assert resume["epoch"] == 1  # the run can resume from its last good epoch


def test_resume_refuses_another_training_set(tmp_path):
    manifest = write_shapes_manifest(tmp_path, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(manifest, _tiny_settings(), progress=ProgressWriter(enabled=False), resume=True)
    train(
        manifest,
        _tiny_settings(epochs=2, baseline_eval=False),
        progress=ProgressWriter(enabled=False),
        should_stop=iter([False] * 3 + [True] * 100).__next__,
    )
    other = write_shapes_manifest(tmp_path, train=5, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    with pytest.raises(TrainingError, match="another run"):
        train(other, _tiny_settings(epochs=2), progress=ProgressWriter(enabled=False), resume=True)


def test_no_training_images_is_a_user_error(tmp_path):
    manifest = write_shapes_manifest(tmp_path, train=0, val=2, size=32, arch=ARCH)
    with pytest.raises(TrainingError, match="no training images"):
        train(manifest, _tiny_settings(), progress=ProgressWriter(enabled=False))


# ------------------------------------------------------------------------------------ protocol


def test_progress_lines_are_json_and_junk_is_ignored():
    stream = io.StringIO()
    writer = ProgressWriter(stream, batch_interval_s=3600)
    writer.emit("val", epoch=1, miou=float("nan"), per_class_iou={"a": np.float32(0.5)})
    writer.batch(epoch=1, iter=1, loss=1.0)
    writer.batch(epoch=1, iter=2, loss=0.9)  # throttled
    writer.batch(force=True, epoch=1, iter=3, loss=0.8)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first == {"event": "val", "epoch": 1, "miou": None, "per_class_iou": {"a": 0.5}}
    assert [json.loads(line)["iter"] for line in lines[1:]] == [1, 3]
    assert parse_progress_line("Traceback (most recent call last):") is None
    assert parse_progress_line('{"event": "nonsense"}') is None
    assert parse_progress_line(b'{"event": "done", "reason": "completed"}\n')["reason"] == "completed"
    with pytest.raises(ValueError):
        writer.emit("bogus")


def test_adamw_with_balanced_class_weights_trains(tmp_path):
    manifest = write_shapes_manifest(tmp_path, train=4, val=2, size=32, arch=ARCH, base=BaseSpec("scratch"))
    writer = ProgressWriter(enabled=False)
    result = train(
        manifest,
        _tiny_settings(optimizer="adamw", lr=1e-3, class_weights="balanced", baseline_eval=False),
        progress=writer,
    )
    assert result.reason == "completed" and result.checkpoint is not None
    losses = [e["loss"] for e in writer.events if e["event"] == "epoch"]
    assert losses and all(np.isfinite(losses))
    assert load_checkpoint(result.checkpoint).provenance["config"]["optimizer"] == "adamw"


def test_val_reports_uncertainty_and_a_cancelled_run_worse_than_its_start_is_not_kept(tmp_path, monkeypatch):
    manifest = write_shapes_manifest(tmp_path, train=4, val=3, size=32, arch=ARCH, base=BaseSpec("scratch"))
    good = np.array([[9, 1, 0, 0], [1, 9, 0, 0], [0, 0, 9, 1], [0, 0, 1, 9]])
    bad = np.array([[5, 5, 0, 0], [5, 5, 0, 0], [0, 0, 5, 5], [0, 0, 5, 5]])
    calls = []

    def fake_evaluate(*args, **kwargs):  # the starting model is better than anything training produces
        calls.append(kwargs.get("per_image"))
        return np.stack([good if len(calls) == 1 else bad] * 3)

    monkeypatch.setattr(train_loop, "evaluate", fake_evaluate)
    steps = {"n": 0}

    def stop_in_second_epoch() -> bool:
        steps["n"] += 1
        return steps["n"] > 3

    writer = ProgressWriter(enabled=False)
    result = train(manifest, _tiny_settings(epochs=5), progress=writer, should_stop=stop_in_second_epoch)
    assert calls and all(calls)  # validation asks for per-image matrices
    vals = [e for e in writer.events if e["event"] == "val"]
    assert [v["val_images"] for v in vals] == [3, 3, 3] and all(v["miou_pm"] is not None for v in vals)
    assert vals[0].get("gain") is None and vals[1]["gain"]["value"] < 0 and vals[1]["gain"]["n"] == 3
    done = writer.events[-1]
    assert result.reason == "cancelled" and result.beats_start is False
    assert done["beats_start"] is False and done["keep"] is False
    assert done["gain"] == result.gain_estimate and result.gain_estimate["value"] < 0
    assert result.miou_estimate["n"] == 3
