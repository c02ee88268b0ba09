"""`segstudio info FOLDER [--project-dir DIR] [--json]`: what a project holds and where its state lives.

Opens the project like the app does (so files added, removed or renamed since the last session
are reconciled first). If the project is open in a SegStudio window, it shows the last saved
state read-only instead of failing. A folder that has never been opened is reported without
creating anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from segstudio.core.effort import summarize_effort
from segstudio.core.errors import ProjectError, ProjectLockedError
from segstudio.core.project import DB_NAME, STATE_DIR_NAME, Project
from segstudio.core.scan import scan_images
from segstudio.core.state_guard import check_state_folder

_STATUS_LABELS = {
    "new": "new",
    "predicted": "predicted",
    "in_progress": "in progress",
    "done": "done",
    "skipped": "skipped",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="the image folder")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="where the project state lives if not in FOLDER/.segstudio (e.g. for a read-only image folder)",
    )
    parser.add_argument("--db", help="a team project: postgresql://USER@HOST:PORT/DATABASE (docs/team.md)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--effort",
        action="store_true",
        help="median active seconds and actions per done image, per model version",
    )


def _summary(folder: Path, project_dir: Path | None, db: str | None = None) -> dict[str, Any]:
    folder = folder.expanduser().absolute()
    if not folder.exists():
        raise ProjectError(f"image folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise ProjectError(f"{folder} is not a folder; give the folder that contains the images")
    if db is not None:  # a team project: the summary comes from the server
        with Project.open(folder, state_dir=project_dir, db=db) as project:
            summary = project.summary()
            summary.update(changes={"added": 0, "removed": 0, "renamed": 0, "changed": 0}, read_only=False)
            summary["effort"] = summarize_effort(project.effort_rows())
        summary.update(project=True, state_location="team server")
        return summary
    state = project_dir.expanduser().absolute() if project_dir is not None else folder / STATE_DIR_NAME
    check_state_folder(state, sidecar=project_dir is None)  # even a folder without a database: say so
    if not (state / DB_NAME).is_file():
        found = scan_images(folder, exclude=(state,))
        return {"image_dir": str(folder), "state_dir": str(state), "project": False, "images": len(found)}
    try:
        with Project.open(folder, state_dir=project_dir) as project:
            summary = project.summary()
            report = project.last_reconcile
            summary["changes"] = {
                "added": len(report.added) + len(report.restored),
                "removed": len(report.removed),
                "renamed": len(report.renamed),
                "changed": len(report.changed),
            }
            summary["read_only"] = False
            summary["effort"] = summarize_effort(project.effort_rows())
    except ProjectLockedError:
        with Project.open_read_only(folder, state_dir=project_dir) as project:
            summary = project.summary()
            summary["read_only"] = True
            summary["effort"] = summarize_effort(project.effort_rows())
    summary["project"] = True
    summary["state_location"] = "sidecar" if project_dir is None else "project folder"
    return summary


def _text(summary: dict[str, Any]) -> str:
    if not summary["project"]:
        return "\n".join([
            f"Image folder: {summary['image_dir']}",
            f"  images:  {summary['images']}",
            f"  project: none yet (opening the folder in SegStudio creates its state in {summary['state_dir']})",
        ])  # fmt: skip
    status = " · ".join(f"{_STATUS_LABELS.get(k, k)} {v}" for k, v in summary["status"].items())
    scheme = summary["scheme"]
    classes = ", ".join(scheme["classes"][:8]) + (", ..." if len(scheme["classes"]) > 8 else "")
    models = ", ".join(summary["model_versions"]) or "none"
    if summary["active_model_version"]:
        models += f" (active: {summary['active_model_version']})"
    unreadable = f"  ({summary['unreadable']} unreadable)" if summary["unreadable"] else ""
    if summary.get("removed"):
        unreadable += f"  ({summary['removed']} removed by a lead, not counted)"
    lines = [
        f"SegStudio project: {summary['image_dir']}",
        f"  state:   {summary['state_dir']}  ({summary['state_location']})",
        f"  images:  {summary['images']}{unreadable}",
        f"  status:  {status}",
        f"  split:   train {summary['split']['train']} · val {summary['split']['val']} "
        f"(val fraction {summary['val_fraction']:.2f})",
        f"  scheme:  {scheme['name']} ({len(scheme['classes'])} classes: {classes})",
        f"  models:  {models}",
    ]
    if "team_server" in summary:
        lines.insert(1, f"  team:    {summary['team_server']} as {summary['member']} ({summary['role']})")
        lines.append(f"  my queue: {summary.get('assigned_to_me', 0)} unfinished image(s) assigned to you")
        consensus = summary.get("consensus") or {}
        if consensus.get("consensus_images"):
            miou = consensus["miou"]
            lines.append(
                f"  consensus: {consensus['consensus_images']} image(s) ({consensus['resolved']} resolved"
                + (f", {consensus['single']} taken out" if consensus.get("single") else "")
                + "); "
                f"agreement mIoU {'-' if miou is None else f'{miou:.3f}'} over {consensus['compared']} compared"
            )
        for rejected in summary.get("rejected", []):
            lines.append(
                f"  rejected: {rejected['image']} by {rejected['reviewer']}: {rejected['comment'] or '(no comment)'}"
            )
    changes = summary.get("changes")
    if changes and any(changes.values()):
        lines.append(
            f"  on disk since last open: +{changes['added']} added, -{changes['removed']} removed, "
            f"{changes['renamed']} renamed, {changes['changed']} changed"
        )
    if summary["read_only"]:
        lines.append(
            "  note:    the project is in use by another SegStudio process (the app or a command); this is its last saved state"
        )
    return "\n".join(lines)


def effort_text(groups: list[dict[str, Any]]) -> str:
    """The effort table: one line per model version (the same figures as the GUI's Effort view)."""
    if not groups:
        return (
            "Effort: no done image has recorded editing effort yet (it is recorded while you edit in the app)"
        )
    lines = [
        "Effort per done image (median):",
        f"  {'model version':<28} {'images':>6} {'seconds':>8} {'actions':>8} "
        f"{'changed':>8}  actions by tool",
    ]
    for g in groups:
        changed = "-" if g["median_changed_fraction"] is None else f"{g['median_changed_fraction']:.1%}"
        tools = ", ".join(f"{k} {v}" for k, v in g["actions_by_tool"].items())
        lines.append(
            f"  {g['model_version'] or '(no prediction)':<28} {g['images']:>6} {g['median_seconds']:>8.0f} "
            f"{g['median_actions']:>8g} {changed:>8}  {tools}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from segstudio.export.staging_registry import sweep

    sweep()  # staging folders of killed exports and imports, wherever they were going
    summary = _summary(args.folder, args.project_dir, args.db)
    effort = summary.pop("effort", None)
    if args.json:
        if args.effort:
            summary["effort"] = effort or []
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(_text(summary))
    if args.effort:
        print(effort_text(effort or []) if summary["project"] else "Effort: no project yet")
    return 0
