"""`segstudio predict FOLDER --db URL`, alone or as any number of torchrun ranks on any machines.

The server is the only coordinator (see `work_queue`): no process group is needed, so a rank may join
late or die at any time; under torchrun with `--max-restarts` the restarted ranks simply claim again.
Each rank loops until the whole queue is done, waiting out other ranks' live claims, so when every rank
has exited every image has been predicted exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from segstudio.core.errors import ImageReadError, ProjectError, SegStudioError, UsageError
from segstudio.team.project import TeamProject
from segstudio.team.work_queue import WorkQueue

__all__ = ["run_ranks"]

#: Seconds between looks at the queue while the rest is claimed by other (live or dead) ranks.
POLL_SECONDS = 1.0


def run_ranks(
    args: argparse.Namespace,
    image_dir: Any,
    state_dir: str | None,
    model_spec: Callable[..., tuple[Any, bool]],
) -> int:
    from segstudio.commands.console import task_progress
    from segstudio.ml.device import device_label
    from segstudio.ml.predict import load_predictor

    if args.overwrite:
        raise UsageError(
            "--overwrite is not available for team projects yet; the lead clears predictions instead"
        )
    if args.claim_size < 1 or args.claim_seconds <= 0:
        raise UsageError("--claim-size must be at least 1 and --claim-seconds above 0")
    rank = os.environ.get("RANK", "0")
    with TeamProject.join(image_dir, args.db, state_dir=state_dir, heartbeat=False) as project:
        queue = WorkQueue(project, args.claim_seconds)
        queue.enqueue()
        spec, use_crf = model_spec(args, project)
        progress = task_progress("predict", args)
        loaded, predictor = load_predictor(
            spec, project.scheme, project, args.remap_classes, progress,
            tile_size=args.tile_size, batch_size=args.batch_size,
        )  # fmt: skip
        print(f"rank {rank}: model {loaded.description} [{loaded.version}] on {device_label(loaded.device)}, "
              f"CRF {'on' if use_crf else 'off'}, claims as {queue.token}", file=sys.stderr)  # fmt: skip
        stored = lost = 0
        unreadable: list[tuple[str, str]] = []
        limit = args.limit
        while limit is None or stored < limit:
            size = args.claim_size if limit is None else min(args.claim_size, limit - stored)
            batch = queue.claim(size)
            if not batch:
                if queue.outstanding() == 0:
                    break
                time.sleep(POLL_SECONDS)  # the rest is claimed: finished by its rank, or free once expired
                continue
            images, records = [], []
            for rec in batch:
                try:
                    images.append(project.load_image(rec))
                    records.append(rec)
                except (ImageReadError, ProjectError) as error:
                    unreadable.append((rec.rel_path, getattr(error, "reason", str(error))))
                    queue.mark_unpredictable(rec.id)
            try:
                for rec, result in zip(records, predictor.predict_many(iter(images))):
                    blobs = project.prediction_blobs(
                        rec, result.labels, result.confidence, result.raw_labels if use_crf else None
                    )
                    if queue.finish(rec, blobs, loaded.version):
                        stored += 1
                    else:
                        lost += 1
            except (SegStudioError, KeyboardInterrupt):
                queue.give_back([r.id for r in records])
                raise
        print(f"rank {rank}: predicted {stored} image(s)"
              + (f"; {lost} finished by another rank after this rank's claim expired" if lost else ""),
              file=sys.stderr)  # fmt: skip
        for rel_path, reason in unreadable:
            print(f"  unreadable on this machine: {rel_path}: {reason}", file=sys.stderr)
    return 1 if unreadable else 0
