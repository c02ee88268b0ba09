"""`segstudio predict`: pre-annotate a project's images with a segmentation model (headless).

Predictions go into the project next to (never over) corrected masks; images already predicted by
the same model version are skipped unless --overwrite, so an interrupted run resumes where it stopped.
Unreadable images are skipped, listed at the end, and make the exit status 1.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from segstudio.commands.console import add_progress_arguments, task_progress
from segstudio.core.errors import DiskWriteError, ImageReadError, ProjectError, UsageError
from segstudio.core.task_handle import NullTask, TaskHandle

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
    """The model to run (and whether the CRF is on) from the options and the project's CRF setting."""
    from segstudio.ml import crf as crf_mod
    from segstudio.ml.crf_project import project_crf
    from segstudio.ml.spec import ModelSpec

    crf_params = crf_mod.load_params(project)
    use_crf = project_crf(project) is not None
    if args.crf is not None:
        use_crf = args.crf
    if args.crf_scale is not None:
        crf_params = crf_mod.CRFParams.from_dict({**crf_params.to_dict(), "scale": args.crf_scale})
    if args.save:
        crf_mod.save_params(
            project, crf_mod.CRFParams.from_dict({**crf_params.to_dict(), "enabled": use_crf})
        )
    is_file = args.weights not in WEIGHT_WORDS
    spec = ModelSpec(
        arch=args.model,
        weights="file" if is_file else args.weights,
        path=str(Path(args.weights).expanduser()) if is_file else None,
        version=args.model_version,
        device=args.device,
        precision=args.precision,
        crf=crf_params if use_crf else None,
        tta=args.tta,
        max_side=args.max_side,
    )
    return spec, use_crf


def run(args: argparse.Namespace) -> int:
    _validate(args)
    from segstudio.core.probabilities import save_probabilities
    from segstudio.core.project import Project, Status
    from segstudio.ml.device import device_label, pick_device
    from segstudio.ml.models import arch_info
    from segstudio.ml.predict import load_predictor

    if args.model:
        arch_info(args.model)  # unknown name -> clear error before opening anything
    pick_device(args.device)  # an unknown device fails before the project opens
    image_dir, state_dir = _folders(args)
    if args.db:  # a team project: ranks on any number of machines share the server's work queue
        from segstudio.team.predict_ranks import run_ranks

        return run_ranks(args, image_dir, state_dir, _model_spec)
    with Project.open(image_dir, state_dir) as project:
        if not project.images():  # before loading (or downloading) a model for nothing
            from segstudio.core.images import IMAGE_EXTENSIONS

            raise ProjectError(
                f"no images in {project.image_dir} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, "
                "also in subfolders); check the folder"
            )
        spec, use_crf = _model_spec(args, project)
        progress = task_progress("predict", args)
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
            f"CRF {'on' if use_crf else 'off'}, TTA {'on' if args.tta else 'off'}",
            file=sys.stderr,
        )
        if loaded.source == "none":
            print(UNTRAINED_WARNING, file=sys.stderr)
        todo, already, unreadable, finished = [], 0, [], 0
        for rec in project.images():
            if rec.error:
                unreadable.append((rec.rel_path, rec.error))
            elif rec.status in (Status.DONE, Status.SKIPPED):
                finished += 1
            elif not args.overwrite and rec.model_version == loaded.version and project.has_prediction(rec):
                already += 1
            else:
                todo.append(rec)
        if args.limit is not None:
            todo = todo[: args.limit]
        done, handled = 0, 0
        progress.set_progress(0, len(todo))
        image_task = _ImageTask(progress)
        in_flight: deque[Any] = deque()  # records whose images went to the predictor, in order

        def readable() -> Iterator[Any]:
            nonlocal handled
            for rec, image, read_error in _decoded_ahead(project, todo):
                if read_error is None:
                    in_flight.append(rec)
                    progress.set_status(rec.rel_path)
                    yield image
                    continue
                unreadable.append((rec.rel_path, read_error.reason))
                handled += 1
                progress.set_progress(handled, len(todo))

        # predict_many batches consecutive same-size images into one forward pass (batch_size: 4 on CUDA)
        for result in predictor.predict_many(readable(), image_task):
            rec = in_flight.popleft()
            try:
                save_probabilities(project, rec.id, result.coarse, result.labels.shape)
                project.save_prediction(
                    rec,
                    result.labels,
                    result.confidence,
                    loaded.version,
                    result.raw_labels if use_crf else None,
                )
            except (
                OSError,
                sqlite3.OperationalError,
            ) as error:  # disk full / read-only: name the folder; earlier files are intact (atomic)
                raise DiskWriteError(
                    project.state_dir,
                    f"predict (after {done} image(s); masks and earlier predictions are kept)",
                    error,
                ) from None
            done += 1
            handled += 1
            progress.set_progress(handled, len(todo))
        print(
            f"predicted {done} image(s); skipped {already} already predicted by {loaded.version}"
            f"{'' if args.overwrite else ' (use --overwrite to redo)'}, {finished} done/skipped by the user",
            file=sys.stderr,
        )
        if unreadable:
            print(f"{len(unreadable)} unreadable image(s) skipped:", file=sys.stderr)
            for rel_path, reason in unreadable:
                print(f"  {rel_path}: {reason}", file=sys.stderr)
            return 1
    return 0
