"""Checkpoints: round trip, safe loading, scheme checks, and the weights precedence (never the network)."""

from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from segstudio.core.errors import CheckpointError
from segstudio.core.schemes import ClassDef, LabelScheme, voc_scheme
from segstudio.ml import hub
from segstudio.ml.models import arch_info, build_model
from segstudio.ml.spec import ModelSpec
from segstudio.ml.weights import load_checkpoint, load_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("offline_downloads", "one_torch_thread")

ARCH = "lraspp_mobilenet_v3_large"


def scheme_of(*names: str, name: str = "test") -> LabelScheme:
    return LabelScheme(name, tuple(ClassDef(n, (i * 40 % 256, 10, 200)) for i, n in enumerate(names)))


def trained_model(arch: str, num_classes: int, seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(arch, num_classes)
    # Non-default BN statistics, so a load that skipped buffers would be caught.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.9, 1.1)
    return model.eval()


def forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)["out"]


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    scheme = scheme_of("background", "cat", "dog")
    model = trained_model(ARCH, 3)
    path = save_checkpoint(
        tmp_path / "m.pt",
        model,
        ARCH,
        scheme,
        metrics={"miou": 0.5},
        provenance={"epochs": 2},
        version="v2",
        parent="v1",
    )
    ckpt = load_checkpoint(path)
    assert ckpt.arch == ARCH
    assert ckpt.class_names == ["background", "cat", "dog"]
    assert ckpt.scheme().colors.tolist() == scheme.colors.tolist()
    assert ckpt.metrics == {"miou": 0.5}
    assert ckpt.provenance["epochs"] == 2 and "torch" in ckpt.provenance
    assert (ckpt.version, ckpt.parent) == ("v2", "v1")
    assert ckpt.normalization["mean"] == pytest.approx([0.485, 0.456, 0.406])
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt.state_dict[key], value), key
    loaded = load_model(ModelSpec(weights="file", path=str(path)), scheme)
    assert loaded.arch == ARCH and loaded.source == "file" and loaded.version.startswith("file:m.pt:")
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(forward(loaded.model, x), forward(model, x), atol=1e-5)
    assert not list(tmp_path.glob("*.tmp-segstudio")), "atomic write left a temp file"


def test_aux_head_is_dropped_for_inference_but_loads(tmp_path):
    scheme = scheme_of("a", "b")
    model = trained_model("deeplabv3_mobilenet_v3_large", 2)
    path = save_checkpoint(tmp_path / "d.pt", model, "deeplabv3_mobilenet_v3_large", scheme)
    loaded = load_model(ModelSpec(weights="file", path=str(path)), scheme)
    assert loaded.model.aux_classifier is None
    kept = load_model(ModelSpec(weights="file", path=str(path)), scheme, keep_aux=True)
    assert kept.model.aux_classifier is not None


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "segstudio-checkpoint", "state_dict": _Evil(marker)}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "refused" in str(info.value)
    assert not marker.exists()


def test_garbage_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(junk)
    good = save_checkpoint(tmp_path / "g.pt", trained_model(ARCH, 2), ARCH, scheme_of("a", "b"))
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)


def test_scheme_mismatch_refused_unless_remapped(tmp_path):
    source = scheme_of("background", "cat", "dog")
    model = trained_model(ARCH, 3)
    path = save_checkpoint(tmp_path / "m.pt", model, ARCH, source)
    target = scheme_of("background", "dog", "bird", "Cat")
    with pytest.raises(CheckpointError) as info:
        load_model(ModelSpec(weights="file", path=str(path)), target)
    assert "remap" in str(info.value) and "cat" in str(info.value)
    loaded = load_model(ModelSpec(weights="file", path=str(path)), target, remap_by_name=True)
    old = model.state_dict()
    new = loaded.model.state_dict()
    for key in ("classifier.low_classifier.weight", "classifier.high_classifier.bias"):
        assert new[key].shape[0] == 4
        assert torch.equal(new[key][0], old[key][0])  # background
        assert torch.equal(new[key][1], old[key][2])  # dog
        assert torch.equal(new[key][3], old[key][1])  # Cat (names match case-insensitively)
    # shared layers are copied unchanged
    assert torch.equal(new["backbone.0.0.weight"], old["backbone.0.0.weight"])


def test_remap_with_no_common_class_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", trained_model(ARCH, 2), ARCH, scheme_of("a", "b"))
    with pytest.raises(CheckpointError, match="no class name"):
        load_model(ModelSpec(weights="file", path=str(path)), scheme_of("x", "y"), remap_by_name=True)


def test_checkpoint_for_another_arch_refused(tmp_path):
    scheme = scheme_of("a", "b")
    path = save_checkpoint(tmp_path / "m.pt", trained_model(ARCH, 2), ARCH, scheme)
    with pytest.raises(CheckpointError, match="drop --model"):
        load_model(ModelSpec(arch="deeplabv3_mobilenet_v3_large", weights="file", path=str(path)), scheme)
    bare = tmp_path / "bare.pt"
    torch.save(trained_model(ARCH, 2).state_dict(), bare)
    with pytest.raises(CheckpointError, match="another architecture"):
        load_model(ModelSpec(arch="deeplabv3plus_mobilenet_v3_large", weights="file", path=str(bare)), scheme)


def test_bare_state_dict_loads_when_class_count_fits(tmp_path):
    model = trained_model(ARCH, 3)
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    loaded = load_model(ModelSpec(arch=ARCH, weights="file", path=str(bare)), scheme_of("a", "b", "c"))
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(forward(loaded.model, x), forward(model, x), atol=1e-5)
    with pytest.raises(CheckpointError, match="predicts 3 classes"):
        load_model(ModelSpec(arch=ARCH, weights="file", path=str(bare)), scheme_of("a", "b"))


def _place_torchvision_file(arch: str, seed: int = 3) -> torch.nn.Module:
    """Put a locally made 21-class state dict where torchvision's cache looks for the published weights."""
    model = trained_model(arch, 21, seed)
    path = hub.cache_path(arch_info(arch).published_weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def test_torchvision_weights_load_from_torch_home_offline():
    reference = _place_torchvision_file(ARCH)
    loaded = load_model(ModelSpec(arch=ARCH, weights="torchvision"), voc_scheme())
    assert loaded.source == "torchvision"
    assert loaded.version == f"torchvision:{ARCH}:COCO_WITH_VOC_LABELS_V1"
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(forward(loaded.model, x), forward(reference, x), atol=1e-5)


def test_torchvision_weights_with_aux_head_load():
    arch = "deeplabv3_mobilenet_v3_large"
    reference = _place_torchvision_file(arch)
    loaded = load_model(ModelSpec(arch=arch, weights="torchvision"), voc_scheme())
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(forward(loaded.model, x), forward(reference, x), atol=1e-5)


def test_torchvision_weights_offline_says_how_to_import(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(hub.WeightsUnavailableError) as info:
        load_model(ModelSpec(arch=ARCH, weights="torchvision"), voc_scheme())
    message = str(info.value)
    assert "--weights FILE" in message
    assert str(hub.cache_path(arch_info(ARCH).published_weights)) in message


def test_torchvision_weights_need_the_voc_scheme():
    _place_torchvision_file(ARCH)
    with pytest.raises(CheckpointError, match="21 Pascal VOC classes"):
        load_model(ModelSpec(arch=ARCH, weights="torchvision"), scheme_of("road", "car"))
    with pytest.raises(CheckpointError, match="publishes no pretrained weights"):
        load_model(ModelSpec(arch="deeplabv3plus_mobilenet_v3_large", weights="torchvision"), voc_scheme())


@dataclass
class _FakeVersion:
    version: str
    checkpoint_path: str
    arch: str


class _FakeProject:
    def __init__(self, models_dir: Path, versions: list[_FakeVersion], active: str | None) -> None:
        self.models_dir = models_dir
        self._versions = versions
        self._active = active

    def model_versions(self):
        return list(self._versions)

    def active_model_version(self):
        return self._active


def test_auto_precedence(tmp_path):
    voc = voc_scheme()
    _place_torchvision_file(ARCH)
    # no project checkpoint, VOC scheme: torchvision weights
    assert load_model(ModelSpec(arch=ARCH), voc).source == "torchvision"
    # another scheme: no pretrained weights, deterministic initialisation
    other = scheme_of("a", "b")
    first = load_model(ModelSpec(arch=ARCH), other)
    second = load_model(ModelSpec(arch=ARCH), other)
    assert first.source == "none" and first.version == f"untrained:{ARCH}"
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(forward(first.model, x), forward(second.model, x))
    # project checkpoint wins over everything
    model = trained_model(ARCH, 21, seed=9)
    save_checkpoint(tmp_path / "v1.pt", model, ARCH, voc, version="v1")
    project = _FakeProject(tmp_path, [_FakeVersion("v1", "v1.pt", ARCH)], active="v1")
    loaded = load_model(ModelSpec(arch=ARCH), voc, project=project)
    assert (loaded.source, loaded.version) == ("project", "v1")
    assert torch.allclose(forward(loaded.model, x), forward(model, x), atol=1e-5)
    with pytest.raises(CheckpointError, match="no model version 'v7'"):
        load_model(ModelSpec(weights="project", version="v7"), voc, project=project)
    with pytest.raises(CheckpointError, match="no active model version"):
        load_model(ModelSpec(weights="project"), voc, project=_FakeProject(tmp_path, [], None))


def test_predictor_uses_the_max_side_the_checkpoint_was_trained_with(tmp_path):
    """The trainer records its long-side cap; inference on that checkpoint uses the same cap unless asked."""
    from segstudio.ml.predict import DEFAULT_MAX_SIDE, Predictor

    scheme = scheme_of("a", "b")
    model = trained_model(ARCH, 2)
    save_checkpoint(tmp_path / "capped.pt", model, ARCH, scheme, provenance={"max_side": 320})
    save_checkpoint(tmp_path / "plain.pt", model, ARCH, scheme)
    save_checkpoint(tmp_path / "full.pt", model, ARCH, scheme, provenance={"max_side": 0})  # trained uncapped
    full = load_model(ModelSpec(weights="file", path=str(tmp_path / "full.pt")), scheme)
    assert full.max_side == 0 and Predictor.from_loaded(full, precision="float32").max_side is None
    capped = load_model(ModelSpec(weights="file", path=str(tmp_path / "capped.pt")), scheme)
    plain = load_model(ModelSpec(weights="file", path=str(tmp_path / "plain.pt")), scheme)
    untrained = load_model(ModelSpec(arch=ARCH, weights="none"), scheme)
    assert (capped.max_side, plain.max_side, untrained.max_side) == (320, None, None)
    assert Predictor.from_loaded(capped, precision="float32").max_side == 320
    assert Predictor.from_loaded(plain, precision="float32").max_side == DEFAULT_MAX_SIDE
    assert Predictor.from_loaded(untrained, precision="float32").max_side == DEFAULT_MAX_SIDE
    assert (
        Predictor.from_loaded(capped, precision="float32", max_side=96).max_side == 96
    )  # an explicit choice wins
    assert (
        Predictor.from_loaded(capped, precision="float32", max_side=0).max_side is None
    )  # 0 = full resolution
    assert Predictor.from_loaded(capped, precision="float32").working_size(480, 640) == (240, 320)


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_checkpoints_with_non_finite_weights_are_refused(tmp_path, poison):
    scheme = scheme_of("background", "cat", "dog")
    model = trained_model(ARCH, 3)
    path = save_checkpoint(tmp_path / "m.pt", model, ARCH, scheme)
    with torch.no_grad():
        next(p for p in model.parameters() if p.dim() > 1).view(-1)[7] = poison
    # save_checkpoint refuses such weights, so write the poisoned file the way another tool would
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"m\.pt.*NaN or infinite"):
        load_checkpoint(path)
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    with pytest.raises(CheckpointError, match=r"bare\.pth.*NaN or infinite"):
        load_checkpoint(bare)


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_diverged_weights_are_refused_at_save_and_the_previous_file_is_kept(tmp_path, poison):
    scheme = scheme_of("background", "cat", "dog")
    model = trained_model(ARCH, 3)
    path = save_checkpoint(tmp_path / "best.pt", model, ARCH, scheme, metrics={"miou": 0.4})
    good = path.read_bytes()
    with torch.no_grad():
        next(p for p in model.parameters() if p.dim() > 1).view(-1)[3] = poison
    with pytest.raises(
        CheckpointError, match=r"refused to save .*best\.pt: 1 weight tensor.*NaN or infinite"
    ):
        save_checkpoint(path, model, ARCH, scheme, metrics={"miou": 0.5})
    assert path.read_bytes() == good  # the last good checkpoint is untouched
    with pytest.raises(CheckpointError, match="refused to save"):
        save_checkpoint(tmp_path / "new.pt", model, ARCH, scheme)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]  # no poisoned file, no temp file left


def test_diverged_weights_are_refused_in_the_resume_file(tmp_path):
    from segstudio.ml.run_state import RunState

    model = trained_model(ARCH, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = tmp_path / "resume.pt"
    RunState(epoch=1).save(path, model, optimizer, scaler, "fp", ARCH)
    good = path.read_bytes()
    with torch.no_grad():
        next(p for p in model.parameters() if p.dim() > 1).view(-1)[0] = float("nan")
    with pytest.raises(CheckpointError, match=r"refused to save the resume file .*resume\.pt.*NaN"):
        RunState(epoch=2).save(path, model, optimizer, scaler, "fp", ARCH)
    assert path.read_bytes() == good


def test_checkpoint_with_zero_std_normalization_is_refused(tmp_path):
    model = trained_model(ARCH, 3)
    path = save_checkpoint(
        tmp_path / "m.pt",
        model,
        ARCH,
        scheme_of("a", "b", "c"),
        normalization={"mean": [0, 0, 0], "std": [1, 0, 1]},
    )
    with pytest.raises(CheckpointError, match="normalization"):
        load_checkpoint(path)
