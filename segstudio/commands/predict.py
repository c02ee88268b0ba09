"""`segstudio predict`: pre-annotate a project's images with a segmentation model (headless).

Predictions go into the project next to (never over) corrected masks; images already predicted by
the same model version are skipped unless --overwrite, so an interrupted run resumes where it stopped.
Unreadable images are skipped, listed at the end, and make the exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from segstudio.commands.console import add_progress_arguments, task_progress
from segstudio.core.errors import DiskWriteError, ImageReadError, ProjectError, UsageError
from segstudio.core.logs import logged_duration
from segstudio.core.task_handle import NullTask, TaskHandle

_log = logging.getLogger(__name__)

WEIGHT_WORDS = ("auto", "project", "torchvision", "none")
UNTRAINED_WARNING = (
    "warning: this model is untrained (random weights), so its predictions are meaningless. For real ones: "
    "`--weights torchvision` (VOC classes; downloaded once into TORCH_HOME, or copy the .pth file there by hand), "
    "`--weights FILE` (a SegStudio checkpoint or torchvision .pth), or fine-tune on done images with `segstudio train`."
)


class _ImageTask(NullTask):
    """Forwards cancel and status from the run's progress bar; per-tile progress stays quiet."""

    def __init__(self, parent: TaskHandle) -> None:
        super().__init__()
        self._parent = parent

    def set_status(self, message: str) -> None:
        self._parent.set_status(message)

    def is_cancelled(self) -> bool:
        return self._parent.is_cancelled()

    def check_cancelled(self) -> None:
        self._parent.check_cancelled()


def _decoded_ahead(project: Any, records: list[Any]) -> Iterator[tuple[Any, Any, ImageReadError | None]]:
    """Yield (record, image or None, read error) with the next image decoded in a thread meanwhile:
    JPEG decoding is ~15 ms for 2 MP, as much as a GPU forward pass, so it must not be on the critical path."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending = deque((rec, pool.submit(project.load_image, rec)) for rec in records[:2])
        queued = len(pending)
        while pending:
            rec, future = pending.popleft()
            if queued < len(records):
                pending.append((records[queued], pool.submit(project.load_image, records[queued])))
                queued += 1
            try:
                yield rec, future.result(), None
            except ImageReadError as error:
                yield rec, None, error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segstudio.ml.catalog import arch_names
    from segstudio.ml.device import DEVICE_CHOICES
    from segstudio.ml.precision import PRECISION_CHOICES

    parser.add_argument(
        "folder", help="image folder (the project is its .segstudio state) or that state folder"
    )
    parser.add_argument("--project-dir", help="project state folder, when it is not <folder>/.segstudio")
    parser.add_argument(
        "--model",
        help="architecture (default: the checkpoint's, else deeplabv3_mobilenet_v3_large): "
        + ", ".join(arch_names()),
    )
    parser.add_argument(
        "--weights",
        default="auto",
        help="auto (project model, else torchvision for VOC, else none) | project | torchvision | none | FILE",
    )
    parser.add_argument("--version", dest="model_version", help="project model version for --weights project")
    parser.add_argument(
        "--device", default="auto", help=f"{' | '.join(DEVICE_CHOICES)} | cuda:N (default auto)"
    )
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                        help="auto: half precision only where it agrees with float32 and is faster")  # fmt: skip
    parser.add_argument("--crf", action=argparse.BooleanOptionalAction, default=None,
                        help="dense CRF for this run (default: the project's CRF setting; see `segstudio crf`)")  # fmt: skip
    parser.add_argument(
        "--crf-scale", type=float, help="run the CRF at 1/SCALE resolution (default 3; 1 = full)"
    )
    parser.add_argument(
        "--save", action="store_true", help="save --crf/--no-crf/--crf-scale as the project's setting"
    )
    parser.add_argument("--tta", action="store_true", help="horizontal-flip test-time augmentation (2x time)")
    parser.add_argument("--max-side", type=int,
                        help="resize so the long side is at most this (default: the cap the model was "
                             "fine-tuned with, else 1024; 0 = full resolution)")  # fmt: skip
    parser.add_argument("--tile-size", type=int, default=1024, help="sliding-window tile size in pixels")
    parser.add_argument(
        "--batch-size", type=int, help="same-size images per forward pass (default 4 on CUDA, 1 on CPU)"
    )
    parser.add_argument("--limit", type=int, help="predict at most this many images in this run")
    parser.add_argument(
        "--overwrite", action="store_true", help="re-predict images already predicted by this model"
    )
    parser.add_argument(
        "--remap-classes", action="store_true", help="load a checkpoint of another scheme by class name"
    )
    parser.add_argument(
        "--db", help="team project: postgresql://USER@HOST/DATABASE (torchrun ranks share its work queue)"
    )
    parser.add_argument("--claim-seconds", type=float, default=300.0,
                        help="team project: a rank's claimed batch goes back to the queue after this long")  # fmt: skip
    parser.add_argument("--claim-size", type=int, default=4, help="team project: images per claimed batch")
    add_progress_arguments(parser)


def _validate(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1 (got {args.limit})")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.crf_scale is not None and not 1.0 <= args.crf_scale <= 16.0:
        raise UsageError(f"--crf-scale must be between 1 and 16 (got {args.crf_scale})")
    if args.max_side is not None and args.max_side != 0 and args.max_side < 32:
        raise UsageError(f"--max-side must be 0 (off) or at least 32 (got {args.max_side})")
    if args.weights not in WEIGHT_WORDS and not Path(args.weights).expanduser().is_file():
        raise UsageError(
            f"--weights {args.weights!r} is neither one of {', '.join(WEIGHT_WORDS)} nor an existing file"
        )


def _folders(args: argparse.Namespace) -> tuple[Path, str | None]:
    folder = Path(args.folder).expanduser()
    if folder.name == ".segstudio" and (folder / "project.db").is_file() and args.project_dir is None:
        return folder.parent, str(folder)
    return folder, args.project_dir


def _model_spec(args: argparse.Namespace, project: Any) -> tuple[Any, bool]:
    """The spec and whether the CRF is on, for the team ranks (`team.predict_ranks`)."""
    spec = _spec(args, project)
    return spec, spec.crf is not None


def run(args: argparse.Namespace) -> int:
    """Open the project, load the model, predict what is to do, report (the steps are below)."""
    _validate(args)
    from segstudio.core.project import Project
    from segstudio.ml.device import pick_device
    from segstudio.ml.models import arch_info

    if args.model:
        arch_info(args.model)  # unknown name -> clear error before opening anything
    pick_device(args.device)  # an unknown device fails before the project opens
    image_dir, state_dir = _folders(args)
    if args.db:  # a team project: ranks on any number of machines share the server's work queue
        from segstudio.team.predict_ranks import run_ranks

        return run_ranks(args, image_dir, state_dir, _model_spec)
    with Project.open(image_dir, state_dir) as project:
        _require_images(project)
        spec = _spec(args, project)
        progress = task_progress("predict", args)
        loaded, predictor = _load(args, project, spec, progress)
        plan = _plan(args, project, loaded.version)
        with logged_duration(_log, f"predict {len(plan.todo)} image(s)"):
            done = _predict_all(project, plan, predictor, loaded.version, progress)
        return _report(args, plan, done, loaded.version)


@dataclass
class _Plan:
    """Which images to predict, and what was left alone (for the closing report)."""

    todo: list[Any] = field(default_factory=list)
    already: int = 0  # predicted by this model version before (skipped unless --overwrite)
    finished: int = 0  # done or skipped by the user
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (rel_path, reason)


def _require_images(project: Any) -> None:
    if not project.images():  # before loading (or downloading) a model for nothing
        from segstudio.core.images import IMAGE_EXTENSIONS

        raise ProjectError(
            f"no images in {project.image_dir} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, "
            "also in subfolders); check the folder"
        )


def _spec(args: argparse.Namespace, project: Any) -> Any:
    """The model and CRF to predict with: the flags over the project's settings (saved with --save)."""
    from segstudio.ml import crf as crf_mod
    from segstudio.ml.crf_project import project_crf
    from segstudio.ml.spec import ModelSpec

    crf_params = crf_mod.load_params(project)
    use_crf = project_crf(project) is not None if args.crf is None else args.crf
    if args.crf_scale is not None:
        crf_params = crf_mod.CRFParams.from_dict({**crf_params.to_dict(), "scale": args.crf_scale})
    if args.save:
        crf_mod.save_params(
            project, crf_mod.CRFParams.from_dict({**crf_params.to_dict(), "enabled": use_crf})
        )
    is_file = args.weights not in WEIGHT_WORDS
    return ModelSpec(
        arch=args.model,
        weights="file" if is_file else args.weights,
        path=str(Path(args.weights).expanduser()) if is_file else None,
        version=args.model_version,
        device=args.device,
        precision=args.precision,
        crf=replace(crf_params, enabled=True)
        if use_crf
        else None,  # --crf runs it even if the project's is off
        tta=args.tta,
        max_side=args.max_side,
    )


def _load(args: argparse.Namespace, project: Any, spec: Any, progress: TaskHandle) -> tuple[Any, Any]:
    """The loaded model and its predictor, described on stderr (with a warning for random weights)."""
    from segstudio.ml.device import device_label
    from segstudio.ml.predict import load_predictor

    loaded, predictor = load_predictor(
        spec,
        project.scheme,
        project,
        args.remap_classes,
        progress,
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        coarse_probabilities=True,
    )
    print(
        f"model: {loaded.description} [{loaded.version}] on {device_label(loaded.device)}, "
        f"max side {predictor.max_side or 'full'}, precision {predictor.precision_label}, "
        f"CRF {'on' if predictor.crf is not None else 'off'}, TTA {'on' if args.tta else 'off'}",
        file=sys.stderr,
    )
    if loaded.source == "none":
        print(UNTRAINED_WARNING, file=sys.stderr)
    return loaded, predictor


def _plan(args: argparse.Namespace, project: Any, version: str) -> _Plan:
    from segstudio.core.project import Status

    plan = _Plan()
    for rec in project.images():
        if rec.error:
            plan.unreadable.append((rec.rel_path, rec.error))
        elif rec.status in (Status.DONE, Status.SKIPPED):
            plan.finished += 1
        elif not args.overwrite and rec.model_version == version and project.has_prediction(rec):
            plan.already += 1
        else:
            plan.todo.append(rec)
    if args.limit is not None:
        plan.todo = plan.todo[: args.limit]
    return plan


def _predict_all(project: Any, plan: _Plan, predictor: Any, version: str, progress: TaskHandle) -> int:
    """Predict and store `plan.todo` (unreadable files join `plan.unreadable`); the number predicted."""
    from segstudio.ml.predict import store_prediction

    todo = plan.todo
    done, handled = 0, 0
    progress.set_progress(0, len(todo))
    in_flight: deque[Any] = deque()  # records whose images went to the predictor, in order

    def readable() -> Iterator[Any]:
        nonlocal handled
        for rec, image, read_error in _decoded_ahead(project, todo):
            if read_error is None:
                in_flight.append(rec)
                progress.set_status(rec.rel_path)
                yield image
                continue
            plan.unreadable.append((rec.rel_path, read_error.reason))
            handled += 1
            progress.set_progress(handled, len(todo))

    # predict_many batches consecutive same-size images into one forward pass (batch_size: 4 on CUDA)
    for result in predictor.predict_many(readable(), _ImageTask(progress)):
        rec = in_flight.popleft()
        try:
            store_prediction(project, rec, result, version, crf_ran=predictor.crf is not None)
        except (OSError, sqlite3.OperationalError) as error:
            # disk full / read-only: name the folder; earlier files are intact (atomic)
            raise DiskWriteError(
                project.state_dir,
                f"predict (after {done} image(s); masks and earlier predictions are kept)",
                error,
            ) from None
        done += 1
        handled += 1
        progress.set_progress(handled, len(todo))
    return done


def _report(args: argparse.Namespace, plan: _Plan, done: int, version: str) -> int:
    """The closing summary on stderr; exit status 1 when some images could not be read."""
    print(
        f"predicted {done} image(s); skipped {plan.already} already predicted by {version}"
        f"{'' if args.overwrite else ' (use --overwrite to redo)'}, {plan.finished} done/skipped by the user",
        file=sys.stderr,
    )
    if not plan.unreadable:
        return 0
    print(f"{len(plan.unreadable)} unreadable image(s) skipped:", file=sys.stderr)
    for rel_path, reason in plan.unreadable:
        print(f"  {rel_path}: {reason}", file=sys.stderr)
    return 1
