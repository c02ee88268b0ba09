"""Command-line front end: `segstudio [FOLDER]` opens the GUI, `segstudio <command> ...` runs headless.

Each subcommand lives in its own module under `segstudio.commands` and is imported only when
used, so `segstudio info` never pays for torch and the GUI never pays for argparse setup of
commands it does not run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from segstudio import __version__
from segstudio.core.errors import CancelledError, SegStudioError
from segstudio.core.logs import set_verbose, setup_logging

#: Exit status of cancelled work (a `CancelledError` or Ctrl-C): 128 + SIGINT, as shells report it.
#: Bad input exits 2 with "error: ..."; a cancel is not an error.
EXIT_CANCELLED = 130

#: subcommand name -> module in segstudio.commands exposing `add_arguments(parser)` and `run(args) -> int`
COMMANDS: dict[str, str] = {
    "gui": "gui",
    "info": "info",
    "predict": "predict",
    "export": "export",
    "import": "import_",
    "train": "train",
    "eval": "eval",
    "crf": "crf",
    "repair": "repair",
    "team": "team",
}

HELP: dict[str, str] = {
    "gui": "open the annotation window (the default when no command is given)",
    "info": "print a project summary",
    "predict": "pre-annotate images with a segmentation model",
    "export": "export corrected masks as a VOC, Cityscapes, COCO, mask-folder, CamVid or YOLO dataset",
    "import": "import a VOC, Cityscapes, labelme, mask-folder, CamVid or COCO dataset as a project",
    "train": "fine-tune the project model on done images (torchrun-ready)",
    "eval": "evaluate a model version on the project's val split",
    "crf": "show, change or tune the project's dense CRF (`segstudio crf tune FOLDER`)",
    "repair": "rebuild a damaged project database (masks on disk re-attached, the old file kept)",
    "team": "team projects on a PostgreSQL server: init-server, create, pull (docs/team.md)",
}


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"segstudio {command}", description=HELP[command])
    module = importlib.import_module(f"segstudio.commands.{COMMANDS[command]}")
    module.add_arguments(parser)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also print the log on stderr: timings of long work (INFO), fallbacks (WARNING), errors",
    )
    return parser


def _usage() -> str:
    lines = [
        f"SegStudio {__version__}",
        "",
        "usage: segstudio [FOLDER]",
        "       segstudio <command> [options]",
        "",
        "commands:",
    ]
    lines += [f"  {name:<8} {HELP[name]}" for name in COMMANDS]
    lines += ["", "Run `segstudio <command> --help` for a command's options."]
    return "\n".join(lines)


def _tolerant_output() -> None:
    """File names that are not valid UTF-8 (surrogate-escaped bytes) print as escapes, never crash a print."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", "") == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args and args[0] == "--version":
        print(__version__)
        return 0
    verbose = bool(args) and args[0] == "--verbose"  # `segstudio --verbose <command> ...` as well
    args = args[1:] if verbose else args
    command = args[0] if args and args[0] in COMMANDS else "gui"
    rest = args[1:] if args and args[0] in COMMANDS else args
    parsed = argparse.Namespace()  # what the error paragraph can name, once the arguments are parsed
    try:
        parsed = build_parser(command).parse_args(rest)
        verbose = verbose or parsed.verbose
        setup_logging(stderr=verbose)  # the rotating file in the user's log folder; stderr only when asked
        set_verbose(verbose)
        module = importlib.import_module(f"segstudio.commands.{COMMANDS[command]}")
        return int(module.run(parsed) or 0)
    except CancelledError:  # the one place a cancel ends: not an error, and the same exit as Ctrl-C
        logging.getLogger(__name__).info("%s: cancelled", command)
        print(f"segstudio {command}: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except SegStudioError as error:
        print(f"segstudio {command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"segstudio {command}: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as error:  # a bug or a file nobody foresaw: one paragraph, the traceback in the log
        from segstudio.commands.unexpected import report_unexpected

        # the traceback reaches the terminal too only with --verbose (the log file always has it)
        print(report_unexpected(command, parsed, error, show_traceback=verbose), file=sys.stderr)
        return 2
