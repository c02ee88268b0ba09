"""Checkpoint files with fields of the wrong type or bomb-compressed tensors: a CheckpointError, never a crash.

The wrong-type cases are the ones that passed the safe loader and then crashed predict --weights,
train --base/--resume, eval and the project model; each is now refused by `ml.checkpoint_schema`
before anything reads it.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
import torch

from bench.hostile_files import deflate_bomb
from segstudio.cli import main
from segstudio.core.errors import CheckpointError
from segstudio.ml.checkpoint_schema import MAX_MODEL_BYTES, check_archive
from segstudio.ml.run_state import RunState
from segstudio.ml.weights import CHECKPOINT_FORMAT, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def good_payload() -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": 1,
        "arch": "lraspp_mobilenet_v3_large",
        "classes": [{"name": "background", "color": [0, 0, 0]}, {"name": "car", "color": [200, 0, 0]}],
        "state_dict": {"classifier.weight": torch.zeros(2, 3)},
        "provenance": {"max_side": 512},
        "metrics": {"miou": 0.5, "per_class_iou": {"car": 0.4, "background": None}},
        "version": "v1",
        "parent": None,
        "extra": {},
    }


BAD_FIELDS = {
    "classes a list of ints": {"classes": [1, 2]},
    "a class without a name": {"classes": [{"color": [0, 0, 0]}]},
    "a class name that is a number": {"classes": [{"name": 3, "color": [0, 0, 0]}]},
    "a colour out of range": {"classes": [{"name": "a", "color": [0, 0, 999]}]},
    "no classes": {"classes": []},
    "provenance a list": {"provenance": [1, 2]},
    "metrics a string": {"metrics": "good"},
    "metrics with NaN": {"metrics": {"miou": float("nan")}},
    "arch a list": {"arch": ["lraspp"]},
    "integer state-dict keys": {"state_dict": {0: torch.zeros(2)}},
    "version a dict": {"version": {"v": 1}},
    "extra a list": {"extra": [1]},
    # found by the fuzz run (bench/fuzz.py): OverflowError and "Boolean value of Tensor is ambiguous"
    "metrics with a 400-digit integer": {"metrics": {"miou": 10**400}},
    "normalization a tensor": {"normalization": torch.zeros(3)},
    "normalization with a 400-digit integer": {"normalization": {"mean": [10**400] * 3, "std": [1] * 3}},
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_fields_of_the_wrong_type_are_refused(tmp_path, case):
    path = tmp_path / "bad.pt"
    torch.save({**good_payload(), **BAD_FIELDS[case]}, path)
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        load_checkpoint(path)


def test_a_good_payload_still_loads(tmp_path):
    torch.save(good_payload(), tmp_path / "good.pt")
    ckpt = load_checkpoint(tmp_path / "good.pt")
    assert ckpt.class_names == ["background", "car"] and ckpt.metrics["miou"] == 0.5


def test_a_bare_state_dict_with_integer_keys_is_refused(tmp_path):
    torch.save({1: torch.zeros(2)}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not text"):
        load_checkpoint(tmp_path / "bare.pt")


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2, 3],
        {"fingerprint": 5, "arch": "x"},
        {"fingerprint": "f", "arch": "a", "epoch": "1"},
        {
            "fingerprint": "f",
            "arch": "a",
            "epoch": 0,
            "iteration": 0,
            "elapsed": 0.0,
            "history": torch.zeros(3, 2),
        },
    ],
    ids=["a list", "fingerprint a number", "epoch text", "history a tensor (fuzz)"],
)
def test_a_resume_file_of_the_wrong_shape_is_refused(tmp_path, payload):
    torch.save(payload, tmp_path / "resume.pt")
    with pytest.raises(CheckpointError, match="resume state"):
        RunState.load(tmp_path / "resume.pt", "f", "a")


def _bomb(path: Path, inflated: int) -> None:
    """A checkpoint whose tensor storage is `inflated` zero bytes, deflate-compressed (about 1/1000)."""
    plain = path.with_suffix(".plain")
    torch.save(good_payload(), plain)
    deflate_bomb(plain, path, inflated)


def test_a_compressed_checkpoint_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "bomb.pt"
    _bomb(path, 256 * 2**20)
    assert path.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="inflates"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak
    assert main(["predict", str(tmp_path), "--weights", str(path), "--device", "cpu"]) == 2


def test_declared_sizes_beyond_any_model_are_refused(tmp_path):
    path = tmp_path / "big.pt"
    torch.save(good_payload(), path)
    check_archive(path)
    with pytest.raises(CheckpointError, match="declares"):
        check_archive(path, limit=100)


def test_max_model_bytes_covers_every_architecture():
    from segstudio.ml.models import ARCHS, build_model

    for arch, info in ARCHS.items():
        with torch.device("meta"):
            model = build_model(arch, 255, aux_loss=info.has_aux)
        size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        assert size <= MAX_MODEL_BYTES, (arch, size)
