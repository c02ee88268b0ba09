"""One precision vocabulary: canonical dtype names everywhere, short forms accepted as aliases."""

from __future__ import annotations

import pytest
import torch

from segstudio.cli import build_parser
from segstudio.ml.precision import PRECISION_CHOICES, PRECISIONS, PrecisionError, canonical_precision
from segstudio.ml.predict import resolve_precision
from segstudio.ml.train import TrainConfig, TrainingError
from segstudio.ml.train_loop import autocast_for
from segstudio.ml.train_loop import resolve_precision as train_precision


def test_aliases_map_to_canonical_names_and_unknown_names_list_the_choices():
    assert [canonical_precision(n) for n in ("fp32", "bf16", "fp16", "float32", "auto")] == [
        "float32",
        "bfloat16",
        "float16",
        "float32",
        "auto",
    ]
    with pytest.raises(
        PrecisionError, match="choose one of: auto, float32, bfloat16, float16, fp32, bf16, fp16"
    ):
        canonical_precision("int8")


def test_trainer_and_predictor_speak_the_same_names():
    cpu = torch.device("cpu")
    assert TrainConfig(precision="bf16").precision == "bfloat16"
    assert train_precision(TrainConfig(precision="fp32"), cpu) == "float32"
    assert train_precision(TrainConfig(), cpu) in ("float32", "bfloat16")
    assert resolve_precision("bf16", cpu) == "bfloat16" == resolve_precision("bfloat16", cpu)
    with pytest.raises(TrainingError, match="unknown precision 'half'"):
        TrainConfig(precision="half")
    with pytest.raises(TrainingError, match="needs a CUDA GPU"):
        train_precision(TrainConfig(precision="float16"), cpu)
    with autocast_for("bfloat16", cpu)():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_command_lines_take_their_choices_from_the_one_list():
    for command in ("train", "predict"):
        action = next(a for a in build_parser(command)._actions if a.dest == "precision")
        assert tuple(action.choices) == PRECISION_CHOICES and set(PRECISIONS) <= set(action.choices)
