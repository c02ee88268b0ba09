"""`segstudio repair FOLDER [--project-dir DIR] [--scheme NAME]`: rebuild a damaged project database.

What it does (and that it never deletes anything) is in `segstudio.core.store_repair`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="the image folder whose project database is damaged")
    parser.add_argument(
        "--project-dir", type=Path, default=None,
        help="where the project state lives if not in FOLDER/.segstudio",
    )  # fmt: skip
    parser.add_argument(
        "--scheme", default=None,
        help="the label scheme (voc, cityscapes, camvid or a .json file), only needed when it cannot be recovered",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from segstudio.core.store_repair import repair_project

    report = repair_project(args.folder, args.project_dir, args.scheme)
    print(f"repaired the project of {Path(args.folder).expanduser().absolute()}")
    print(report.describe())
    return 0
