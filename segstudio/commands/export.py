"""`segstudio export FOLDER --format voc|cityscapes|coco|masks|camvid --out DIR`: write a training dataset."""

from __future__ import annotations

import argparse
import json
import sys

from segstudio.commands.console import add_progress_arguments, task_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segstudio.export.registry import available_formats

    parser.add_argument("project", help="the project's image folder")
    parser.add_argument("--format", required=True, choices=available_formats(), help="dataset layout")
    parser.add_argument(
        "--out", required=True, help="output folder (new, empty, or a previous export of the same format)"
    )
    parser.add_argument(
        "--project-dir", default=None, help="the project's state folder, if not inside the image folder"
    )
    parser.add_argument(
        "--include",
        choices=["done", "mask"],
        default="done",
        help="'done' images only (default) or every image with a mask",
    )
    parser.add_argument(
        "--split", default="project", help="project (default), train, val, or random:F (fraction F to val)"
    )
    parser.add_argument(
        "--void-band",
        type=int,
        default=0,
        metavar="PX",
        help="VOC: void band of PX pixels along class boundaries",
    )
    parser.add_argument(
        "--color-masks", action="store_true", help="masks/camvid: also write colour PNGs of the masks"
    )
    parser.add_argument(
        "--check", action="store_true", help="only run the pre-export check and list problems"
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings of the check as errors")
    parser.add_argument("--db", help="a team project: postgresql://USER@HOST:PORT/DATABASE (docs/team.md)")
    parser.add_argument(
        "--accepted-only", action="store_true", help="team project: only images a reviewer accepted"
    )
    add_progress_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from segstudio.core.errors import ExportError
    from segstudio.core.project import Project
    from segstudio.export.common import ExportOptions
    from segstudio.export.project_export import check_project, export_project

    options = ExportOptions(
        include=args.include, split=args.split, void_band=args.void_band, color_masks=args.color_masks
    )
    if args.accepted_only and not args.db:
        from segstudio.core.errors import UsageError

        raise UsageError(
            "--accepted-only is for team projects; add --db URL (reviews live on the team server)"
        )
    opened = (
        Project.open(args.project, state_dir=args.project_dir, db=args.db)
        if args.db
        else Project.open_for_reading(args.project, state_dir=args.project_dir)
    )
    with opened as project:
        if args.accepted_only:
            project.limit_to_accepted()
        if project.read_only:
            print("note: the project is open in SegStudio; exporting its last saved state", file=sys.stderr)
        report = check_project(project, args.format, options)
        for problem in report.problems if args.check else report.warnings:
            print(f"{problem.severity}: {problem.message}", file=sys.stderr)
        if args.check:
            return 1 if report.errors else 0
        if args.strict and report.warnings:
            raise ExportError(
                f"the check found {len(report.warnings)} warning(s) and --strict is set; fix them or drop --strict"
            )
        progress = task_progress(f"export {args.format}", args)
        result = export_project(project, args.format, args.out, options, progress, check=report)
    print(
        json.dumps(
            {
                "out": str(result.out_dir),
                "format": result.dataset_format,
                "exported": result.exported,
                "written": result.written,
                "unchanged": result.reused,
                "skipped": len(result.skipped),
            }
        )
    )
    return 0
