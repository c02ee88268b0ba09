"""A checkpoint whose classes the project adopted stays loadable after the user renames a class."""

from __future__ import annotations

import pytest
import torch

from segstudio.core.errors import CheckpointError
from segstudio.core.schemes import ClassDef, LabelScheme
from segstudio.ml.models import build_model
from segstudio.ml.spec import ModelSpec
from segstudio.ml.weights import load_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("offline_downloads", "one_torch_thread")
ARCH = "lraspp_mobilenet_v3_large"


def _scheme(*names: str) -> LabelScheme:
    return LabelScheme("s", tuple(ClassDef(n, (40 * i, 9, 9)) for i, n in enumerate(names)))


def test_rows_follow_class_numbers_when_the_project_adopted_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model(ARCH, 3).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, ARCH, _scheme("road", "pavement", "sky"))
    renamed = _scheme("road", "sidewalk", "sky")
    with pytest.raises(CheckpointError, match="remap by class name"):
        load_model(ModelSpec(weights="file", path=str(path)), renamed)
    loaded = load_model(ModelSpec(weights="file", path=str(path), classes_by_index=True), renamed)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(loaded.model(x)["out"], model(x)["out"], atol=1e-5)
    with pytest.raises(CheckpointError):  # another class count is never read by index
        load_model(ModelSpec(weights="file", path=str(path), classes_by_index=True), _scheme("a", "b"))
