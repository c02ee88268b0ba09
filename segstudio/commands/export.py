"""`segstudio export`: not yet available (its issue has not landed)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    print("segstudio export: not yet available in this version", file=sys.stderr)
    return 2
