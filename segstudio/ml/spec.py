"""`ModelSpec`: which model to run and how, as one small immutable value the CLI, GUI and worker pass around."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from segstudio.ml.crf import CRFParams

__all__ = ["WEIGHT_SOURCES", "ModelSpec"]

#: where weights come from; "auto" = project checkpoint, else torchvision (VOC scheme only), else none
WEIGHT_SOURCES = ("auto", "project", "file", "torchvision", "none")


@dataclass(frozen=True)
class ModelSpec:
    arch: str | None = None  # None: the checkpoint's arch, else models.DEFAULT_ARCH
    weights: str = "auto"
    path: str | None = None  # checkpoint file when weights == "file"
    version: str | None = None  # project model version when weights == "project" (None = the active one)
    device: str = "auto"
    precision: str = "auto"  # see ml.precision (float32, bfloat16, float16 or fp32, bf16, fp16)
    crf: CRFParams | None = None  # None = no CRF
    tta: bool = False
    max_side: int | None = None  # None: the checkpoint's training cap, else 1024; 0: full resolution
    #: a checkpoint of other classes: match its class rows by name (the GUI's "map by name")
    remap_classes: bool = False
    #: the project adopted (or matched) the checkpoint's classes: its rows are the project's classes by
    #: index, so renaming a class in the palette keeps the model loadable
    classes_by_index: bool = False

    @classmethod
    def from_project(cls, project: Any) -> ModelSpec:
        """Defaults plus the project's settings (its CRF: `ml.crf_project.project_crf`)."""
        from segstudio.ml.crf_project import project_crf

        return cls(crf=project_crf(project))

    def with_(self, **changes: Any) -> ModelSpec:
        return replace(self, **changes)
