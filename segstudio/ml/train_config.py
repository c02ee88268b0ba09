"""Training settings and results: what a run is asked to do (`TrainConfig`) and what it produced.

Torch-free so the GUI and the CLI can validate settings without paying torch's import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segstudio.core.errors import SegStudioError
from segstudio.ml.manifest import ManifestError
from segstudio.ml.precision import PRECISIONS, PrecisionError, canonical_precision

if TYPE_CHECKING:
    from segstudio.ml.augment import AugmentConfig

__all__ = [
    "BEST_NAME",
    "CLASS_WEIGHTS",
    "OPTIMIZERS",
    "PRECISIONS",
    "RESUME_NAME",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
]

BEST_NAME = "best.pt"
RESUME_NAME = "resume.pt"
OPTIMIZERS = ("sgd", "adamw")
CLASS_WEIGHTS = ("none", "balanced")


class TrainingError(SegStudioError):
    """Training cannot start or continue as asked (no data, bad settings, a resume that does not fit)."""


@dataclass
class TrainConfig:
    """Every training setting; a manifest's `settings` and the CLI's flags fill it."""

    arch: str | None = None
    epochs: int = 30
    time_budget_s: float | None = None  # stop (and finish the poly schedule) after this many seconds
    optimizer: str = "sgd"
    lr: float | None = None  # None: 0.01 for SGD, 1e-4 for AdamW
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch: int = 4
    crop: int = 384
    scale_min: float = 0.5
    scale_max: float = 2.0
    jitter: float = 0.2
    hflip: float = 0.5
    max_side: int = 1024
    freeze_backbone: bool = False
    aux_weight: float = 0.5
    #: BatchNorm running-stat momentum while training; None keeps the arch's. torchvision's MobileNetV3
    #: uses 0.01, so after a few hundred steps (a typical fine-tune) the eval-mode statistics still lag
    #: far behind the weights and validation collapses; 0.1 (PyTorch's default) tracks them.
    bn_momentum: float | None = 0.1
    class_weights: str = "none"  # "none" | "balanced"
    patience: int = 10  # epochs without val-mIoU gain before stopping; 0 = never stop early
    min_iters_per_epoch: int = 10
    seed: int | None = 0
    deterministic: bool = False
    device: str = "auto"
    precision: str = "auto"  # ml.precision: auto, float32, bfloat16, float16 (or fp32, bf16, fp16)
    channels_last: bool | None = None  # None: on CUDA and CPU (faster convolutions), off on MPS
    workers: int = 2
    cache_images: bool = True
    baseline_eval: bool = True  # validate the starting model first, for the before/after comparison
    #: also train the click model (the ``learned`` smart-click engine) from the train images, stored next
    #: to best.pt (ml.click_model_files): the version carries it
    click_model: bool = False
    #: 1800: measured, 900 steps left the click model deaf to corrective clicks (docs/click-model.md)
    click_model_steps: int = 1800
    click_model_time_s: float | None = None  # stop the click model's training after this long

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(
                f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}"
            )
        try:
            self.precision = canonical_precision(self.precision)
        except PrecisionError as error:
            raise TrainingError(str(error)) from None
        if self.class_weights not in CLASS_WEIGHTS:
            raise TrainingError(
                f"unknown class weighting {self.class_weights!r}; choose one of: {', '.join(CLASS_WEIGHTS)}"
            )
        if self.batch < 2:
            raise TrainingError("--batch must be at least 2 (batch normalisation needs two samples per step)")
        if self.epochs < 1:
            raise TrainingError("--epochs must be at least 1")
        if self.crop < 16:
            raise TrainingError("--crop must be at least 16 pixels")
        if self.click_model_steps < 1:
            raise TrainingError("--click-model-steps must be at least 1")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise TrainingError("--time-budget must be positive (seconds)")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.01 if self.optimizer == "sgd" else 1e-4

    def augment(self, mean: tuple[float, ...], std: tuple[float, ...]) -> AugmentConfig:
        from segstudio.ml.augment import AugmentConfig

        return AugmentConfig(
            crop=self.crop,
            scale_min=self.scale_min,
            scale_max=self.scale_max,
            hflip=self.hflip,
            jitter=self.jitter,
            max_side=self.max_side,
            mean=tuple(mean),
            std=tuple(std),
        )  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ManifestError(f"unknown training setting(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass
class TrainResult:
    reason: str  # completed | early_stop | time_budget | cancelled
    checkpoint: Path | None
    version: str | None
    parent: str | None
    arch: str
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline_miou: float | None = None
    best_miou: float | None = None
    best_epoch: int | None = None
    epochs_run: int = 0
    fingerprint: str = ""
    #: the best model's val mIoU and its gain over the starting model on the same val images, each as
    #: {"value", "plus_minus" (95 % bootstrap half-width), "n" (val images)}; None without a val split
    miou_estimate: dict[str, Any] | None = None
    gain_estimate: dict[str, Any] | None = None

    @property
    def beats_start(self) -> bool | None:
        """Whether the best model is at least as good as the starting one on val (None: not measured)."""
        from segstudio.ml.selection import beats_start

        return beats_start(self.best_miou, self.baseline_miou)
