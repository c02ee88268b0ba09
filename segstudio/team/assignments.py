"""The work queue of a team project, as TeamProject methods: who annotates which image, in what order.

A lead assigns images (`assign`): by hand (the images given), round robin, by folder (whole folders go
to one member, balanced by image count), or by least confidence (the least confident predictions first,
dealt round robin so everyone gets a share of the hard ones). The server enforces it: an assigned image's
mask may be saved only by its assignee or a lead (policy on `mask_versions`, schema 2). Each member's
"next unfinished" follows `my_queue()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segstudio.core.errors import ProjectError
from segstudio.core.store_records import ImageRecord, Status
from segstudio.team.editing import Review

__all__ = ["STRATEGIES", "Assignments", "plan_assignment"]

STRATEGIES = ("hand", "round-robin", "folder", "confidence")
FINISHED = (Status.DONE, Status.SKIPPED)


def _folder(rec: ImageRecord) -> str:
    return rec.rel_path.rsplit("/", 1)[0] if "/" in rec.rel_path else ""


def plan_assignment(
    records: Sequence[ImageRecord], members: Sequence[str], by: str
) -> list[tuple[ImageRecord, str, int]]:
    """(image, member, position in that member's queue) for each image; pure, so it is tested alone."""
    if not members:
        raise ProjectError("name at least one member to assign to (--to NAME[,NAME])")
    if by not in STRATEGIES:
        raise ProjectError(f"unknown assignment strategy {by!r}; choose one of {', '.join(STRATEGIES)}")
    plan: list[tuple[ImageRecord, str]] = []
    if by == "folder":
        groups: dict[str, list[ImageRecord]] = {}
        for rec in records:
            groups.setdefault(_folder(rec), []).append(rec)
        load = dict.fromkeys(members, 0)
        for _, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            member = min(members, key=lambda m: (load[m], members.index(m)))  # the least loaded
            load[member] += len(group)
            plan += [(rec, member) for rec in group]
    else:
        ordered = list(records)
        if by == "confidence":  # unpredicted images last: their confidence is unknown
            ordered.sort(key=lambda r: (r.mean_confidence is None, r.mean_confidence or 0.0, r.rel_path))
        plan = [(rec, members[i % len(members)]) for i, rec in enumerate(ordered)]
    positions: dict[str, int] = {}
    result = []
    for rec, member in plan:
        positions[member] = positions.get(member, -1) + 1
        result.append((rec, member, positions[member]))
    return result


class Assignments:
    """Mixed into TeamProject (provides `_run`, `_rows`, `images`, `member`, `review_of`)."""

    _run: Any
    _rows: Any
    images: Any
    member: str

    def assign(
        self, records: Sequence[ImageRecord], members: Sequence[str], by: str = "round-robin"
    ) -> dict[str, int]:
        """Assign `records` to `members` (leads only; replaces earlier assignments of those images)."""
        members = [m.strip() for m in members if m.strip()]
        known = {
            str(r[0])
            for r in self._rows(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND "
                "pg_has_role(rolname, 'segstudio_annotator', 'MEMBER')",
                (members,),
            )
        }
        unknown = [m for m in members if m not in known]
        if unknown:
            raise ProjectError(
                f"not members of this team server: {', '.join(unknown)}; check the names (their database "
                "login roles) or ask the administrator to create them (docs/team.md)"
            )
        plan = plan_assignment(records, members, by)
        start = {
            str(m): int(p) + 1
            for m, p in self._rows(
                "SELECT assignee, max(position) FROM segstudio.assignments GROUP BY assignee"
            )
        }
        rows = [(rec.id, member, start.get(member, 0) + pos) for rec, member, pos in plan]

        def work(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO segstudio.assignments(image_id, assignee, position) VALUES (%s, %s, %s) "
                    "ON CONFLICT (image_id) DO UPDATE SET assignee = excluded.assignee, "
                    "position = excluded.position, assigned_by = current_user, assigned_at = now()",
                    rows,
                )

        self._run(work, "assign images (leads assign work)")
        counts = dict.fromkeys(members, 0)
        for _, member, _ in plan:
            counts[member] += 1
        return counts

    def assignments(self) -> dict[int, str]:
        """image id -> the member it is assigned to."""
        return {int(i): str(m) for i, m in self._rows("SELECT image_id, assignee FROM segstudio.assignments")}

    def my_queue(self) -> list[ImageRecord]:
        """This member's unfinished assigned images, in queue order (what "next unfinished" follows);
        consensus images count as theirs while open, finished when their own branch is."""
        order = {
            int(i): int(p)
            for i, p in self._rows(
                "SELECT a.image_id, a.position FROM segstudio.assignments a WHERE a.assignee = current_user "
                "UNION ALL SELECT c.image_id, coalesce(a.position, 0) FROM segstudio.consensus c "
                "LEFT JOIN segstudio.assignments a ON a.image_id = c.image_id "
                "WHERE current_user IN (c.annotator_a, c.annotator_b) AND c.resolved_version IS NULL"
            )
        }  # a second annotator's consensus images come in the order the lead dealt them
        mine = [r for r in self.images() if r.id in order and r.status not in FINISHED and not r.error]
        return sorted(mine, key=lambda r: (order[r.id], r.rel_path))

    def verdicts(self) -> dict[int, Review]:
        """image id -> the latest review of its current version (images without one are absent)."""
        rows = self._rows(
            "SELECT DISTINCT ON (r.image_id) r.image_id, r.verdict, r.comment, r.reviewer, r.mask_version, "
            "extract(epoch FROM r.created_at) FROM segstudio.reviews r "
            "JOIN segstudio.images i ON i.id = r.image_id AND r.mask_version = i.mask_head "
            "WHERE segstudio.consensus_state(r.image_id) IS DISTINCT FROM 'open' "  # a verdict before consensus
            "ORDER BY r.image_id, r.id DESC"
        )
        return {int(i): Review(v, c, w, int(m), float(t)) for i, v, c, w, m, t in rows}

    def rejections(self) -> dict[int, Review]:
        return {i: r for i, r in self.verdicts().items() if r.verdict == "rejected"}
