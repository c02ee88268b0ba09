"""A training run's progress as one object that saves and restores itself, so `--resume` continues a run.

The torchvision reference keeps this in a loose checkpoint dict; here it is a dataclass whose fields
are the run's bookkeeping (epoch, iteration, time spent, best and baseline validation, patience,
history), written after each epoch together with the model, optimizer and scaler states. The file
keeps its original keys, so resume files from earlier versions still load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segstudio.core.atomic import atomic_writer
from segstudio.core.errors import CheckpointError
from segstudio.ml.train_config import TrainingError

__all__ = ["RunState"]


def _array(value: torch.Tensor | None) -> np.ndarray | None:
    return None if value is None else value.numpy()


@dataclass
class RunState:
    """Where a run stands after its last finished epoch (0 = nothing trained yet)."""

    epoch: int = 0
    iteration: int = 0
    elapsed: float = 0.0
    best_miou: float | None = None
    best_epoch: int | None = None
    best_metrics: dict[str, Any] = field(default_factory=dict)
    baseline_miou: float | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: per-image val confusion matrices (N, C, C) of the starting model and of the best epoch: the paired
    #: comparison of the two (`ml.selection.gain_estimate`) survives a resume
    baseline_cms: np.ndarray | None = None
    best_cms: np.ndarray | None = None
    resumed: bool = False

    def record_val(self, epoch: int, metrics: dict[str, Any], per_image: np.ndarray) -> bool:
        """Count one validation; True when it is the best so far (patience restarts)."""
        miou = metrics["miou"] if metrics["miou"] is not None else 0.0
        improved = self.best_miou is None or miou > self.best_miou + 1e-6
        if improved:
            self.best_miou, self.best_epoch, self.best_metrics, self.bad_epochs = miou, epoch, metrics, 0
            self.best_cms = per_image
        else:
            self.bad_epochs += 1
        return improved

    def save(
        self,
        path: Path,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        fingerprint: str,
        arch: str,
    ) -> None:
        """Write the resume file atomically: this state plus everything needed to continue bit-for-bit.

        Diverged (NaN/inf) weights are refused, so the previous epoch's file stays resumable."""
        from segstudio.ml.weights import refuse_non_finite  # torchvision: only once a run saves

        model = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        refuse_non_finite(model, f"refused to save the resume file {path}")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "resumed"}
        for key in (
            "baseline_cms",
            "best_cms",
        ):  # the resume file loads with weights_only: tensors, not arrays
            fields[key] = None if fields[key] is None else torch.from_numpy(np.ascontiguousarray(fields[key]))
        payload = {
            **fields,
            "model": model,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "fingerprint": fingerprint,
            "arch": arch,
            "rng": torch.get_rng_state(),
        }
        with atomic_writer(path) as handle:
            torch.save(payload, handle)

    @classmethod
    def load(cls, path: Path, fingerprint: str, arch: str) -> tuple[RunState, dict[str, Any]]:
        """(the state, the raw payload with model/optimizer/scaler/rng) of the run saved at `path`."""
        if not path.is_file():
            raise TrainingError(f"nothing to resume: {path} does not exist; start a new run without --resume")
        from segstudio.ml.checkpoint_schema import check_archive, resume_payload

        check_archive(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise CheckpointError(f"cannot read resume state {path}: {error}; start a new run") from None
        payload = resume_payload(payload, path)  # every field's type, before anything reads it
        if payload.get("fingerprint") != fingerprint or payload.get("arch") != arch:
            raise TrainingError(
                f"{path} belongs to another run (different images, classes or architecture); "
                "start a new run without --resume"
            )
        state = cls(
            epoch=int(payload["epoch"]),
            iteration=int(payload["iteration"]),
            elapsed=float(payload["elapsed"]),
            best_miou=payload.get("best_miou"),
            best_epoch=payload.get("best_epoch"),
            best_metrics=dict(payload.get("best_metrics") or {}),
            baseline_miou=payload.get("baseline_miou"),
            bad_epochs=int(payload.get("bad_epochs", 0)),
            history=list(payload.get("history") or []),
            baseline_cms=_array(payload.get("baseline_cms")),
            best_cms=_array(payload.get("best_cms")),
            resumed=True,
        )
        return state, payload

    def restore(
        self, payload: dict[str, Any], optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
    ) -> None:
        """Put the optimizer, scaler and random state of a loaded payload back (the model is loaded earlier)."""
        try:
            optimizer.load_state_dict(payload["optimizer"])
            if payload.get("scaler"):
                scaler.load_state_dict(payload["scaler"])
            if "rng" in payload:
                torch.set_rng_state(payload["rng"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as error:
            raise CheckpointError(
                f"the saved optimizer state does not fit this run ({type(error).__name__}: {error}); "
                "start a new run without --resume"
            ) from None
