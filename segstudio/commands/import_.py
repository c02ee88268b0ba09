"""`segstudio import voc|cityscapes|labelme|masks|camvid|coco SOURCE --out DIR`: turn a dataset into a project."""

from __future__ import annotations

import argparse
import sys

from segstudio.commands.console import add_progress_arguments, task_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segstudio.export.registry import available_importers

    parser.add_argument("kind", choices=available_importers(), help="what the source folder holds")
    parser.add_argument(
        "source",
        help="VOC folder (VOCdevkit/VOC2012 or a parent), Cityscapes root, labelme JSON folder, mask folder "
        "(images/ + masks/), CamVid folder (train/ + trainannot/) or COCO folder (annotations/*.json + images)",
    )
    parser.add_argument("--out", help="new (or empty) folder for the project (images are copied there)")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="labelme: make the source folder itself the project (no copies; masks only)",
    )
    parser.add_argument(
        "--scheme", default=None, help="map labels onto this scheme (voc, cityscapes, camvid or a .json file)"
    )
    parser.add_argument(
        "--labels", default=None, help="labelme: labels.txt (default: in the folder or its parent)"
    )
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="read files that the dataset's lists or labelme imagePath name outside the source folder "
        "(refused by default: a dataset may only name files inside itself)",
    )
    parser.add_argument("--dry-run", action="store_true", help="only show the class mapping; write nothing")
    add_progress_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from segstudio.core.errors import ExportError
    from segstudio.core.schemes import get_scheme
    from segstudio.export.import_common import import_in_place, run_import
    from segstudio.export.registry import get_importer

    scheme = get_scheme(args.scheme) if args.scheme else None
    preview = get_importer(args.kind)
    options = {"labels_file": args.labels} if args.kind == "labelme" else {}
    plan = preview(args.source, scheme=scheme, allow_outside=args.allow_outside, **options)
    print(plan.describe())
    if args.dry_run:
        return 1 if plan.unmapped else 0
    if bool(args.out) == bool(args.in_place):
        raise ExportError(
            "pass either --out DIR (a new project folder) or --in-place (or --dry-run to only see the mapping)"
        )
    progress = task_progress(f"import {args.kind}", args)
    target = import_in_place(plan, progress) if args.in_place else run_import(plan, args.out, progress)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"imported {len(plan.samples)} images into {target}; open it with: segstudio {target}")
    return 0
