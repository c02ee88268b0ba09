"""`segstudio train`: fine-tune the project model on its done images; torchrun-ready.

Two ways in:
  segstudio train PROJECT [options]     opens the project (rank 0 only), builds the training manifest,
                                        trains, registers the new model version (v1, v2, ...)
  segstudio train --manifest FILE       trains what a front end (the GUI, which holds the project lock)
                                        exported; the front end registers the version itself
Progress: a human progress line on stderr at a terminal; JSON lines on stdout (see
segstudio.ml.progress) with --json, which the GUI passes, or when stdout is a pipe
(segstudio.commands.console decides). A summary goes to stderr.
SIGTERM / Ctrl-C stop after the current batch and keep the best checkpoint so far.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from segstudio.commands.console import add_train_output_arguments, train_progress

#: CLI flag -> TrainConfig field, for flags that override the manifest's settings when given
_OVERRIDES = {
    "arch": "arch",
    "epochs": "epochs",
    "time_budget": "time_budget_s",
    "lr": "lr",
    "optimizer": "optimizer",
    "batch": "batch",
    "crop": "crop",
    "freeze_backbone": "freeze_backbone",
    "class_weights": "class_weights",
    "patience": "patience",
    "device": "device",
    "precision": "precision",
    "seed": "seed",
    "deterministic": "deterministic",
    "workers": "workers",
    "max_side": "max_side",
    "min_iters": "min_iters_per_epoch",
    "click_model": "click_model",
    "click_model_steps": "click_model_steps",
    "click_model_time": "click_model_time_s",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segstudio.ml.precision import PRECISION_CHOICES
    from segstudio.ml.train_config import CLASS_WEIGHTS, OPTIMIZERS

    parser.add_argument("project", nargs="?", help="image folder of the project to fine-tune")
    parser.add_argument("--project-dir", help="the project's state folder, if not PROJECT/.segstudio")
    parser.add_argument(
        "--manifest", help="train from a manifest JSON exported by a front end (no project lock)"
    )
    from segstudio.ml.catalog import arch_names

    parser.add_argument(
        "--arch", help="architecture for a new model (default: the base model's): " + ", ".join(arch_names())
    )
    parser.add_argument(
        "--base", help="start from: active (default), a version (v3), torchvision, scratch, or a file"
    )
    parser.add_argument("--epochs", type=int, help="maximum epochs (default 30)")
    parser.add_argument(
        "--time-budget", type=float, metavar="SECONDS", help="stop after this long (the LR schedule fits it)"
    )
    parser.add_argument("--lr", type=float, help="base learning rate (default 0.01 SGD, 1e-4 AdamW)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="SGD + poly LR (default) or AdamW")
    parser.add_argument("--batch", type=int, help="images per step and process (default 4)")
    parser.add_argument("--crop", type=int, help="training crop size in pixels (default 384)")
    parser.add_argument(
        "--freeze-backbone", action="store_true", default=None, help="train only the heads (fast on CPU)"
    )
    parser.add_argument("--class-weights", choices=CLASS_WEIGHTS, help="weight rare classes up in the loss")
    parser.add_argument("--patience", type=int, help="stop after N epochs without val-mIoU gain (0 = never)")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="mixed precision: auto (bfloat16/float16 on CUDA), float32, bfloat16, float16",
    )
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument(
        "--deterministic", action="store_true", default=None, help="deterministic algorithms (slower)"
    )
    parser.add_argument("--workers", type=int, help="data loading processes (default 2)")
    parser.add_argument(
        "--max-side", type=int, help="cap images' long side at this many pixels (default 1024)"
    )
    parser.add_argument("--min-iters", type=int, help="minimum steps per epoch for tiny sets (default 10)")
    parser.add_argument(
        "--click-model",
        action="store_true",
        default=None,
        help="also train the click model (the smart tool's learned engine) from the done images; "
        "the new version carries it (docs/click-model.md)",
    )
    parser.add_argument(
        "--click-model-steps",
        type=int,
        help="click model training steps (default 1800: ~20 min on a 2-core CPU)",
    )
    parser.add_argument(
        "--click-model-time",
        type=float,
        metavar="SECONDS",
        help="stop the click model's training after this long",
    )
    parser.add_argument(
        "--db",
        help="team project: postgresql://USER@HOST/DATABASE; trains on its accepted images and stores the "
        "new version on the server (activated only with --activate yes, by a lead)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run")
    parser.add_argument(
        "--activate",
        choices=("auto", "yes", "no"),
        default="auto",
        help="make the new version the project model (auto: when its val mIoU is at least the "
        "starting model's on the same images)",
    )
    add_train_output_arguments(parser)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        field: getattr(args, flag) for flag, field in _OVERRIDES.items() if getattr(args, flag) is not None
    }


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM and the first Ctrl-C ask the trainer to stop gracefully (the best checkpoint is kept)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    from segstudio.core.errors import CancelledError, SegStudioError, UsageError
    from segstudio.ml.device import pick_device
    from segstudio.ml.distributed import DistContext

    if bool(args.project) == bool(args.manifest):
        raise UsageError(
            "give either a project folder or --manifest FILE (not both); see segstudio train --help"
        )
    dist = DistContext.from_env()
    device = dist.device_for(pick_device(args.device or "auto"))
    dist.init(device)
    progress = train_progress(args, enabled=dist.is_main)
    try:
        with _stop_on_signals() as stop:
            if args.manifest:
                return _run_manifest(args, dist, progress, stop)
            return _run_project(args, dist, progress, stop)
    except CancelledError:
        raise  # not a failure: cli.main reports every command's cancel the same way (exit 130)
    except SegStudioError as error:
        progress.emit("error", message=str(error))
        raise
    except Exception as error:
        progress.emit("error", message=f"{type(error).__name__}: {error}")
        raise
    finally:
        dist.shutdown()


def _train(manifest: Any, args: argparse.Namespace, dist: Any, progress: Any, stop: threading.Event) -> Any:
    from segstudio.ml.train import TrainConfig, train

    config = TrainConfig.from_mapping({**manifest.settings, **_overrides(args)})
    return train(manifest, config, progress=progress, dist=dist, should_stop=stop.is_set, resume=args.resume)


def _run_manifest(args: argparse.Namespace, dist: Any, progress: Any, stop: threading.Event) -> int:
    from segstudio.ml.manifest import TrainManifest

    result = _train(TrainManifest.load(args.manifest), args, dist, progress, stop)
    if dist.is_main:
        _summary(result)
    return 130 if result.reason == "cancelled" else 0


def _find_resumable(project: Any) -> Path | None:
    runs = [
        p.parent
        for p in Path(project.models_dir).glob("*/resume.pt")
        if (p.parent / "manifest.json").is_file()
    ]
    return max(runs, key=lambda run: (run / "resume.pt").stat().st_mtime) if runs else None


def _resumed_manifest(project: Any) -> Any:
    """The interrupted run's manifest; moved to a fresh version if its name was registered meanwhile."""
    from segstudio.core.errors import ProjectError
    from segstudio.ml.manifest import TrainManifest

    run = _find_resumable(project)
    if run is None:
        raise ProjectError(
            f"nothing to resume: no interrupted run under {project.models_dir}; start one without --resume"
        )
    manifest = TrainManifest.load(run / "manifest.json")
    if manifest.version is None or project.get_model_version(manifest.version) is not None:
        version = project.next_version_name()
        target = Path(project.models_dir) / version
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / "resume.pt", target / "resume.pt")
        if (run / "best.pt").is_file():  # the best so far carries over: the resumed run competes with it
            shutil.copy2(run / "best.pt", target / "best.pt")
        manifest.version, manifest.output_dir = version, str(target)
        manifest.save(target / "manifest.json")
        (run / "resume.pt").unlink()
    return manifest


def _run_project(args: argparse.Namespace, dist: Any, progress: Any, stop: threading.Event) -> int:
    from segstudio.core.project import Project
    from segstudio.ml.manifest import TrainManifest, manifest_from_project

    project = None
    if dist.is_main:
        project = (
            Project.open(args.project, db=args.db)
            if args.db
            else Project.open(args.project, state_dir=args.project_dir)
        )
    try:
        payload = None
        if project is not None:
            if args.db and args.activate == "yes":
                from segstudio.team.fine_tune import require_lead_to_activate

                require_lead_to_activate(project)
            if args.resume:
                manifest = _resumed_manifest(project)
            else:
                manifest = manifest_from_project(project, base=args.base, arch=args.arch)
                manifest.save(Path(manifest.output_dir) / "manifest.json")
            payload = manifest.to_dict()
        manifest = TrainManifest.from_dict(dist.broadcast_object(payload))
        result = _train(manifest, args, dist, progress, stop)
        if project is not None:
            # a team's model changes only when a lead says so: `auto` stores without activating
            _register(project, result, "no" if args.db and args.activate == "auto" else args.activate)
            _summary(result)
    finally:
        if project is not None:
            project.close()
    return 130 if result.reason == "cancelled" else 0


def _register(project: Any, result: Any, activate: str) -> None:
    """Record the best checkpoint as the run's version; make it active per `activate`.

    `auto` activates only a model at least as good as its starting model on the same val images,
    whatever the base was; a run cancelled before it beat its start adds no version.
    """
    from segstudio.ml.selection import keeps_version

    if result.checkpoint is None or result.version is None:
        return
    if not keeps_version(result.reason, result.best_miou, result.baseline_miou):
        print(
            f"segstudio train: cancelled before beating the starting model; {result.version} not added "
            "(--resume continues the run)",
            file=sys.stderr,
        )
        return
    project.add_model_version(result.version, result.checkpoint, result.arch, result.metrics, result.parent)
    if activate == "yes" or (activate == "auto" and result.beats_start is not False):
        project.set_active_model_version(result.version)


def _summary(result: Any) -> None:
    from segstudio.ml.selection import format_estimate

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    where = f"{result.version} ({result.checkpoint})" if result.checkpoint else "nothing"
    gain = f" ({format_estimate(result.gain_estimate, signed=True)})" if result.gain_estimate else ""
    print(
        f"segstudio train: {result.reason} after {result.epochs_run} epoch(s); saved {where}; "
        f"val mIoU {pct(result.baseline_miou)} -> {pct(result.best_miou)}{gain}",
        file=sys.stderr,
    )
    sys.stderr.flush()
