"""`segstudio [FOLDER]`: open the annotation window (Qt is imported only here, lazily)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", help="image folder to open (optional)")
    parser.add_argument("--project-dir", help="keep project state here instead of FOLDER/.segstudio")


def run(args: argparse.Namespace) -> int:
    from segstudio.gui.app import run_app  # Qt import deferred until a window is really wanted

    return run_app(args.folder, project_dir=args.project_dir)
