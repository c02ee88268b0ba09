"""The trainer: fine-tune (or train) a segmentation model on a `TrainManifest`, torchrun-ready.

In the spirit of torchvision's `references/segmentation/train.py` (DeepLab recipe: SGD + poly LR,
auxiliary loss, 255 ignored, confusion-matrix validation summed across ranks, rank-0 checkpoints,
`--resume`), but as a library: no patched `print`, no mutated args, the backend chosen from the
device, progress as JSON lines (`ml.progress`) and stopping through a callback so a GUI's Cancel or a
SIGTERM keeps the best checkpoint so far.

Outputs in `manifest.output_dir`:
  best.pt    the best checkpoint so far (our checkpoint format, written atomically)
  resume.pt  optimizer/scheduler/epoch state after each epoch; removed when a run completes
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segstudio.core.errors import CancelledError, CheckpointError, SegStudioError
from segstudio.core.logs import timed
from segstudio.ml.data import balanced_class_weights, class_pixel_counts
from segstudio.ml.distributed import DistContext
from segstudio.ml.manifest import TrainManifest
from segstudio.ml.progress import ProgressWriter
from segstudio.ml.run_state import RunState
from segstudio.ml.selection import Estimate, gain_estimate, keeps_version, miou_estimate
from segstudio.ml.start_model import build_start_model, prepare_model
from segstudio.ml.train_config import (
    BEST_NAME,
    OPTIMIZERS,
    PRECISIONS,
    RESUME_NAME,
    TrainConfig,
    TrainingError,
    TrainResult,
)
from segstudio.ml.train_loop import (
    Parts,
    Schedule,
    autocast_for,
    loss_fn,
    make_loaders,
    make_optimizer,
    poly_factor,
    resolve_precision,
    train_one_epoch,
    validate,
)

__all__ = [
    "BEST_NAME",
    "OPTIMIZERS",
    "PRECISIONS",
    "RESUME_NAME",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "build_start_model",
    "loss_fn",
    "poly_factor",
    "state_hash",
    "train",
]

#: the click model's segmentation evidence on the train frames comes from the weights at this share of
#: the run (an early, weaker model: see Trainer._keep_early_weights and docs/click-model.md)
EARLY_AT = 0.5


def state_hash(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (compares ranks' or runs' weights)."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@timed("train")
def train(
    manifest: TrainManifest,
    config: TrainConfig,
    progress: ProgressWriter | None = None,
    dist: DistContext | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train on `manifest` with `config`; returns what was produced (rank 0 writes the files)."""
    from segstudio.ml.device import pick_device

    own_dist = dist is None
    dist = dist or DistContext.from_env()
    device = dist.device_for(pick_device(config.device))
    dist.init(device)
    progress = progress or ProgressWriter(enabled=dist.is_main)
    # process-wide switches the run may flip (deterministic option, cuDNN autotuning): put them back after it
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    benchmark = torch.backends.cudnn.benchmark
    try:
        return Trainer(manifest, config, progress, dist, device, resume).fit(should_stop or (lambda: False))
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.benchmark = benchmark
        if own_dist:
            dist.shutdown()


def _seed_everything(config: TrainConfig, dist: DistContext, device: torch.device) -> None:
    if config.seed is not None:
        torch.manual_seed(config.seed + dist.rank)
        np.random.seed((config.seed + dist.rank) % 2**32)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


class Trainer:
    """One run: the constructor is setup (model, loaders, optimizer, resume state); `fit` runs the epochs.

    Attributes stay readable after `fit` (`module` is the trained model on every rank).
    """

    def __init__(
        self,
        manifest: TrainManifest,
        config: TrainConfig,
        progress: ProgressWriter,
        dist: DistContext,
        device: torch.device,
        resume: bool = False,
    ) -> None:
        if not manifest.train:
            raise TrainingError("no training images: mark some corrected images as done (train split) first")
        self.manifest, self.config, self.progress, self.dist = manifest, config, progress, dist
        self.scheme = manifest.label_scheme()
        self.out_dir = Path(manifest.output_dir)
        if dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.best_path, self.resume_path = self.out_dir / BEST_NAME, self.out_dir / RESUME_NAME
        if (
            dist.is_main and not resume
        ):  # a new run owns its folder: an abandoned run's files must not pass as ours
            from segstudio.ml.click_model_files import CLICK_MODEL_NAME

            for stale in (self.best_path, self.resume_path, self.out_dir / CLICK_MODEL_NAME):
                stale.unlink(missing_ok=True)
        self.fingerprint = manifest.fingerprint()
        _seed_everything(config, dist, device)
        model, self.arch, self.parent, self.base_desc, self.norm = build_start_model(
            manifest.base, manifest.arch or config.arch, self.scheme, config.seed, self.warn
        )
        self._early_state: dict[str, torch.Tensor] | None = None  # see _keep_early_weights
        self.state, payload = RunState(), None
        if resume:
            self.state, payload = RunState.load(self.resume_path, self.fingerprint, self.arch)
            try:
                model.load_state_dict(payload["model"])
            except (RuntimeError, KeyError, ValueError, TypeError) as error:
                raise CheckpointError(
                    f"the resume state {self.resume_path} does not fit the model ({str(error)[:200]}); "
                    "start a new run without --resume"
                ) from None
        self.precision = resolve_precision(config, device)
        channels_last = (
            config.channels_last if config.channels_last is not None else device.type in ("cuda", "cpu")
        )
        model, module = prepare_model(model, config, device, dist, channels_last)
        aug = config.augment(tuple(self.norm["mean"]), tuple(self.norm["std"]))
        loader, sampler, base_train, val_set = make_loaders(manifest, config, aug, dist, device)
        weight = None
        if config.class_weights == "balanced":
            counts = class_pixel_counts(base_train, self.scheme.num_classes)
            weight = torch.from_numpy(balanced_class_weights(counts)).to(device)
        optimizer, scaler, base_lrs = make_optimizer(module, config, device, self.precision)
        if payload is not None:
            self.state.restore(payload, optimizer, scaler)
        self.parts = Parts(
            model,
            module,
            loader,
            sampler,
            val_set,
            optimizer,
            scaler,
            base_lrs,
            weight,
            autocast_for(self.precision, device),
            channels_last,
            device,
        )

    @property
    def module(self) -> nn.Module:
        return self.parts.module

    def warn(self, message: str) -> None:
        self.progress.emit("warning", message=message)

    # ------------------------------------------------------------------------------------ run

    def fit(self, should_stop: Callable[[], bool]) -> TrainResult:
        """Baseline validation, then epochs until done, early stop, time budget or cancel."""
        config, state, dist = self.config, self.state, self.dist
        self._emit_start()
        if not state.resumed and config.baseline_eval:
            self._validate_baseline()
        schedule = Schedule(len(self.parts.loader) * config.epochs, config.time_budget_s, state.elapsed)
        reason, epoch = "completed", state.epoch
        for epoch in range(state.epoch + 1, config.epochs + 1):
            outcome = train_one_epoch(
                self.parts, config, epoch, state.iteration, schedule, dist, self.progress, should_stop
            )
            state.iteration = outcome.iteration
            if outcome.stop == "cancelled" and outcome.steps == 0:
                reason, epoch = "cancelled", epoch - 1
                break
            self._end_epoch(epoch, outcome.mean_loss)
            self._keep_early_weights(schedule.fraction(state.iteration))
            reason = outcome.stop or self._stop_after(schedule) or reason
            if reason != "completed":
                break
            if epoch < config.epochs and dist.is_main:
                state.epoch, state.elapsed = epoch, schedule.elapsed()
                state.save(
                    self.resume_path,
                    self.module,
                    self.parts.optimizer,
                    self.parts.scaler,
                    self.fingerprint,
                    self.arch,
                )
        if self.config.click_model and reason != "cancelled" and dist.is_main and self.best_path.exists():
            self._train_click_model(should_stop)
        return self._finish(reason, epoch)

    def _keep_early_weights(self, fraction: float) -> None:
        """With the click model on: keep (in memory) the weights of the first epoch past EARLY_AT of the
        run. They predict the click model's training frames: the final model has learnt those frames
        and is far surer on them than on new ones, where the click model will meet it."""
        if (
            self.config.click_model
            and self.dist.is_main
            and self._early_state is None
            and fraction >= EARLY_AT
        ):
            self._early_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()
            }

    def _evidence_model(self) -> Callable[[int, np.ndarray], np.ndarray]:
        """`predict(i, image)`: class probabilities of train frame i by the early weights (or the final
        ones when the run kept none), on the CPU at the run's resolution cap."""
        import copy

        from segstudio.ml.predict import Predictor

        model = copy.deepcopy(self.module).to("cpu").float()
        if self._early_state is not None:
            model.load_state_dict(self._early_state)
        model = model.to(memory_format=torch.contiguous_format).eval()
        predictor = Predictor(
            model,
            "cpu",
            normalization=self.norm,
            max_side=self.config.max_side,
            return_probabilities=True,
            precision="float32",
            channels_last=False,
        )

        def predict(_i: int, image: np.ndarray) -> np.ndarray:
            return np.asarray(predictor.predict(image).probabilities, np.float32)

        return predict

    def _train_click_model(self, should_stop: Callable[[], bool]) -> None:
        """The click model of this version, from the same train images (docs/click-model.md), started
        from this run's segmentation model (its early weights' evidence on the train frames)."""
        from segstudio.ml.click_model_files import CLICK_MODEL_NAME
        from segstudio.ml.click_model_train import ClickTrainConfig, ObjectBank, train_click_model

        config = ClickTrainConfig(
            steps=self.config.click_model_steps,
            time_budget_s=self.config.click_model_time_s,
            seed=self.config.seed or 0,
            threads=torch.get_num_threads(),
            device=str(self.parts.device),  # the run's device; AMP there on CUDA
        )
        steps = config.steps

        def on_step(step: int, loss: float) -> None:
            if self.progress.wants_batch() or step == steps:
                self.progress.emit("click_model", step=step, steps=steps, loss=loss)

        try:
            bank = ObjectBank.from_files(
                [(s.image, s.mask) for s in self.manifest.train],
                config.min_object,
                config.max_side,
                self._evidence_model(),
            )
            _, result = train_click_model(bank, self.out_dir / CLICK_MODEL_NAME, config, on_step, should_stop)
        except CancelledError:
            raise
        except SegStudioError as error:
            # the segmentation model this run trained stays a version (the run finishes): only its click
            # model is missing, e.g. done masks whose objects are all tiny, or a mask changed meanwhile
            self.warn(f"this version has no click model: {error}")
            return
        self.progress.emit(
            "click_model",
            path=str(result.path) if result.path else None,
            steps=result.steps,
            seconds=result.seconds,
            reason=result.reason,
        )

    def _stop_after(self, schedule: Schedule) -> str | None:
        if self.config.patience and self.state.bad_epochs >= self.config.patience:
            return "early_stop"
        return "time_budget" if schedule.over_budget() else None

    def _emit_start(self) -> None:
        manifest, dist = self.manifest, self.dist
        self.progress.emit(
            "start",
            epochs=self.config.epochs,
            iters_per_epoch=len(self.parts.loader),
            train_images=len(manifest.train),
            val_images=len(manifest.val),
            classes=self.scheme.names,
            device=str(self.parts.device),
            world_size=dist.world_size,
            arch=self.arch,
            base=self.base_desc,
            parent=self.parent,
            version=manifest.version,
            precision=self.precision,
            resumed_from=self.state.epoch if self.state.resumed else None,
            time_budget_s=self.config.time_budget_s,
            output_dir=str(self.out_dir),
            fingerprint=self.fingerprint,
        )

    def _validate(self) -> tuple[dict[str, Any], np.ndarray] | None:
        return validate(self.parts, self.scheme.num_classes, self.scheme.names, self.dist)

    def _validate_baseline(self) -> None:
        result = self._validate()
        if result is None:
            return
        metrics, self.state.baseline_cms = result
        self.state.baseline_miou = metrics["miou"]
        self.progress.emit("val", epoch=0, **metrics, best_miou=None, improved=False, baseline=True)

    def _gain(self, per_image: np.ndarray | None) -> Estimate | None:
        baseline = self.state.baseline_cms
        if per_image is None or baseline is None or baseline.shape != per_image.shape:
            return None
        return gain_estimate(baseline, per_image)

    def _end_epoch(self, epoch: int, mean_loss: float | None) -> None:
        """Validate, keep the best checkpoint, record the epoch."""
        state = self.state
        record: dict[str, Any] = {"epoch": epoch, "loss": mean_loss}
        result = self._validate()
        if result is not None:
            metrics, per_image = result
            improved = state.record_val(epoch, metrics, per_image)
            record["miou"] = metrics["miou"]
            gain = self._gain(per_image)
            self.progress.emit(
                "val",
                epoch=epoch,
                **metrics,
                best_miou=state.best_miou,
                improved=improved,
                gain=gain.to_dict() if gain else None,
            )
        else:
            improved, state.best_epoch = True, epoch  # no val split: the latest weights are the best we know
        if improved:
            self._save_best(epoch)
        state.history.append(record)

    def _provenance(self, epochs_run: int) -> dict[str, Any]:
        return {
            "training_set_fingerprint": self.fingerprint,
            "train_images": len(self.manifest.train),
            "val_images": len(self.manifest.val),
            "base": self.base_desc,
            "epochs": epochs_run,
            "best_epoch": self.state.best_epoch,
            "device": str(self.parts.device),
            "world_size": self.dist.world_size,
            "precision": self.precision,
            "config": self.config.to_dict(),
            "max_side": self.config.max_side,
        }

    def _save_best(self, epoch: int) -> None:
        if not self.dist.is_main:
            return
        from segstudio.ml.weights import save_checkpoint

        metrics = self.state.best_metrics
        save_checkpoint(
            self.best_path,
            self.module,
            self.arch,
            self.scheme,
            metrics=metrics,
            provenance=self._provenance(epoch),
            version=self.manifest.version,
            parent=self.parent,
            normalization=self.norm,
        )
        self.progress.emit(
            "checkpoint",
            path=str(self.best_path),
            epoch=epoch,
            version=self.manifest.version,
            metrics=metrics,
        )

    def _finish(self, reason: str, epoch: int) -> TrainResult:
        state, dist = self.state, self.dist
        dist.broadcast_buffers(self.module)
        if dist.is_main and reason != "cancelled" and self.resume_path.exists():
            self.resume_path.unlink()  # the run is complete: nothing left to resume
        dist.barrier()
        checkpoint = self.best_path if self.best_path.exists() else None
        estimate = miou_estimate(state.best_cms).to_dict() if state.best_cms is not None else None
        gain = self._gain(state.best_cms)
        result = TrainResult(
            reason=reason,
            checkpoint=checkpoint,
            version=self.manifest.version,
            parent=self.parent,
            arch=self.arch,
            metrics=state.best_metrics,
            baseline_miou=state.baseline_miou,
            best_miou=state.best_miou,
            best_epoch=state.best_epoch,
            epochs_run=epoch,
            fingerprint=self.fingerprint,
            miou_estimate=estimate,
            gain_estimate=gain.to_dict() if gain else None,
        )
        self.progress.emit(
            "done",
            reason=reason,
            checkpoint=str(checkpoint) if checkpoint else None,
            version=self.manifest.version,
            parent=self.parent,
            arch=self.arch,
            best_miou=state.best_miou,
            baseline_miou=state.baseline_miou,
            best_epoch=state.best_epoch,
            epochs_run=epoch,
            metrics=state.best_metrics,
            miou_estimate=result.miou_estimate,
            gain=result.gain_estimate,
            beats_start=result.beats_start,
            keep=keeps_version(reason, state.best_miou, state.baseline_miou),
        )
        return result
