"""`segstudio crf`: show, change or tune the project's dense CRF (what the GUI, predict and eval use).

segstudio crf FOLDER                      # show the settings and the last tuning report
segstudio crf FOLDER --on | --off         # turn it on/off for the project
segstudio crf FOLDER --set bilateral_sxy=40 --set iterations=10
segstudio crf FOLDER --reset              # back to the defaults (keeps on/off)
segstudio crf tune FOLDER [--dry-run]     # learn the settings from done images (held-out decides)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "words", nargs="+", metavar="[tune] FOLDER", help="the project's image folder, after 'tune' to tune"
    )
    parser.add_argument("--project-dir", help="the project's state folder, if not FOLDER/.segstudio")
    onoff = parser.add_mutually_exclusive_group()
    onoff.add_argument("--on", dest="enabled", action="store_const", const=True, help="turn the CRF on")
    onoff.add_argument("--off", dest="enabled", action="store_const", const=False, help="turn the CRF off")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change one setting")
    parser.add_argument("--reset", action="store_true", help="reset the settings to the defaults")
    parser.add_argument("--dry-run", action="store_true", help="tune: report only, save nothing")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _parse_sets(items: list[str]) -> dict[str, str]:
    from segstudio.core.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _show(project: Any, as_json: bool) -> None:
    from segstudio.ml.crf import load_params
    from segstudio.ml.crf_project import TUNE_REPORT_KEY, project_crf

    active = project_crf(project)
    params = load_params(project)
    report = project.get_setting(TUNE_REPORT_KEY)
    if as_json:
        print(json.dumps({"on": active is not None, "settings": params.to_dict(), "last_tuning": report}))
        return
    print(f"CRF: {'on' if active is not None else 'off'} for {project.image_dir}")
    for key, value in params.to_dict().items():
        if key != "enabled":
            print(f"  {key:<17} {value}")
    print(f"last tuning: {report['summary'] if report else 'never (segstudio crf tune FOLDER)'}")


def _print_report(report: Any, names: list[str], as_json: bool, saved: bool) -> None:
    if as_json:
        print(json.dumps({**report.to_dict(names), "saved": saved}))
        return
    rows = [("no CRF", report.none), ("current", report.current), ("tuned", report.tuned)]
    print(f"held-out images: {report.held_out_images} (tuned on {report.tuning_images})")
    print(f"{'':<8} {'mIoU':>7} {'boundary':>9}")
    for label, value in rows:
        if value is not None:
            print(f"{label:<8} {100 * value.miou:7.2f} {100 * value.boundary_accuracy:9.2f}")
    print("per-class IoU % (no CRF -> tuned):")
    for name, a, b in zip(names, report.none.per_class_iou, report.tuned.per_class_iou):
        if a is not None or b is not None:
            print(
                f"  {name:<16} {'n/a' if a is None else f'{100 * a:.1f}':>6} -> {'n/a' if b is None else f'{100 * b:.1f}'}"
            )
    print(
        "tuned settings: "
        + ", ".join(f"{k}={v}" for k, v in report.tuned_params.to_dict().items() if k != "enabled")
    )
    print(report.summary() if saved else report.summary().rsplit(":", 1)[0] + " (dry run: nothing saved)")


def run(args: argparse.Namespace) -> int:
    from segstudio.core.errors import UsageError
    from segstudio.core.project import Project
    from segstudio.core.task_handle import ConsoleProgress
    from segstudio.ml.crf import CRFError, CRFParams, load_params, save_params
    from segstudio.ml.crf_project import tune_project

    words = list(args.words)
    tuning = words[0] == "tune" and len(words) == 2
    if len(words) != (2 if tuning else 1):
        raise UsageError("usage: segstudio crf FOLDER [options] | segstudio crf tune FOLDER")
    folder = words[-1]
    with Project.open(folder, state_dir=args.project_dir) as project:
        if tuning:
            report = tune_project(project, ConsoleProgress("crf tune"), save=not args.dry_run)
            _print_report(report, list(project.scheme.names), args.json, not args.dry_run)
            return 0
        changes = _parse_sets(args.set)
        if args.reset or changes or args.enabled is not None:
            current = load_params(project)
            params = CRFParams(enabled=current.enabled) if args.reset else current
            try:
                params = CRFParams.from_dict({**params.to_dict(), **changes})
            except CRFError as error:
                raise UsageError(str(error)) from None
            if args.enabled is not None:
                params = replace(params, enabled=args.enabled)
            save_params(project, params)
            print("saved", file=sys.stderr)
        _show(project, args.json)
    return 0
