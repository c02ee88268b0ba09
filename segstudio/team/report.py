"""Effort per person and per model version in a team project: what a lead needs to judge whether a new
model saves annotators time, and who needs help.

For accepted images only (work that counts): the median active seconds and actions per image, per
annotator and per model version that pre-annotated it. The rejection rate is over every review of the
annotator's versions (a rejected-then-fixed image counts one rejection and one acceptance). Consensus
images add the agreement between their two annotators (`team.consensus.consensus_report`).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

__all__ = ["consensus_lines", "effort_report", "print_report"]


def effort_report(project: Any) -> dict[str, Any]:
    """{"groups": [{annotator, model_version, accepted_images, median_seconds, median_actions}],
    "rejection_rate": {annotator: {reviews, rejected, rate}}}."""
    accepted = {i for i, r in project.verdicts().items() if r.verdict == "accepted"}
    by_path = {r.rel_path: r for r in project.images()}
    groups: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for member, row in project.effort_by_member():
        rec = by_path.get(row.rel_path)
        if rec is None or rec.id not in accepted:
            continue
        key = (member, row.model_version or "(none)")
        groups.setdefault(key, []).append((row.seconds, row.total_actions))
    rows = project._rows(
        "SELECT v.author, count(*), count(*) FILTER (WHERE r.verdict = 'rejected') "
        "FROM segstudio.reviews r JOIN segstudio.mask_versions v ON v.id = r.mask_version "
        "WHERE v.author <> r.reviewer GROUP BY v.author"  # a resolver accepting their consensus resolution
    )
    return {
        "images": len(by_path),
        "removed_images": project.removed_count(),
        "consensus": project.consensus_report(),
        "groups": [
            {
                "annotator": member,
                "model_version": version,
                "accepted_images": len(values),
                "median_seconds": round(statistics.median(s for s, _ in values), 2),
                "median_actions": statistics.median(a for _, a in values),
            }
            for (member, version), values in sorted(groups.items())
        ],
        "rejection_rate": {
            str(author): {"reviews": int(n), "rejected": int(bad), "rate": round(int(bad) / int(n), 3)}
            for author, n, bad in rows
        },
    }


def print_report(folder: str, url: str, as_json: bool) -> int:
    from segstudio.team.project import TeamProject

    with TeamProject.join(folder, url, heartbeat=False) as project:
        report = effort_report(project)
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'annotator':<16}{'model version':<20}{'accepted':>9}{'median s':>10}{'median actions':>16}")
    for g in report["groups"]:
        print(
            f"{g['annotator']:<16}{g['model_version']:<20}{g['accepted_images']:>9}"
            f"{g['median_seconds']:>10.1f}{g['median_actions']:>16}"
        )
    if not report["groups"]:
        print("(no accepted image with recorded effort yet)")
    for author, r in sorted(report["rejection_rate"].items()):
        print(f"rejection rate of {author}: {r['rejected']}/{r['reviews']} reviews ({r['rate']:.0%})")
    if report["removed_images"]:
        print(
            f"images: {report['images']} in the project, {report['removed_images']} removed by a lead "
            "(not counted above; `segstudio team restore FOLDER --db URL` lists them)"
        )
    for line in consensus_lines(report["consensus"]):
        print(line)
    return 0


def consensus_lines(consensus: dict[str, Any]) -> list[str]:
    """The agreement part of the report as text (nothing when no image went to consensus)."""
    if not consensus["consensus_images"]:
        return []
    miou = consensus["miou"]
    lines = [
        f"consensus: {consensus['consensus_images']} image(s), {consensus['compared']} compared, "
        f"{consensus['waiting']} waiting, {consensus['resolved']} resolved"
        + (f", {consensus['single']} taken out" if consensus.get("single") else "")
        + "; agreement mIoU "
        + ("-" if miou is None else f"{miou:.3f}")
    ]
    if consensus["per_class_iou"]:
        lines.append(f"  {'class':<20}{'IoU':>8}")
        lines += [f"  {name:<20}{iou:>8.3f}" for name, iou in consensus["per_class_iou"].items()]
    for pair in consensus["pairs"]:
        mean = pair["mean_image_miou"]
        lines.append(
            f"  {' + '.join(pair['annotators'])}: {pair['images']} image(s), mean image mIoU "
            + ("-" if mean is None else f"{mean:.3f}")
        )
    return lines
