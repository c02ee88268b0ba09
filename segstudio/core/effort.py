"""Effort telemetry: active editing seconds and actions per tool for one image, and the summary
per model version that shows whether fine-tuning pays off (`segstudio info --effort`, the GUI view).

Active time: the gaps between consecutive edit events are summed, except gaps longer than
`IDLE_GAP` seconds (coffee, a phone call, another window), which count as zero.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IDLE_GAP", "EffortClock", "EffortRow", "summarize_effort"]

IDLE_GAP = 20.0


@dataclass
class EffortClock:
    """Accumulates one image's active seconds and actions until `take()`."""

    seconds: float = 0.0
    actions: Counter = field(default_factory=Counter)
    _last: float | None = None

    def touch(self, now: float) -> None:
        """Any editing event (a press, a drag step) at monotonic time `now`."""
        if self._last is not None and 0.0 <= now - self._last <= IDLE_GAP:
            self.seconds += now - self._last
        self._last = now

    def action(self, tool: str, now: float) -> None:
        self.actions[tool] += 1
        self.touch(now)

    @property
    def empty(self) -> bool:
        return self.seconds == 0.0 and not self.actions

    def take(self) -> tuple[float, dict[str, int]]:
        """The totals so far; the clock starts again (the next event opens a new interval)."""
        out = (self.seconds, dict(self.actions))
        self.seconds, self.actions, self._last = 0.0, Counter(), None
        return out


@dataclass(frozen=True)
class EffortRow:
    rel_path: str
    status: str
    model_version: str | None
    seconds: float
    actions: dict[str, int]
    changed_fraction: float | None

    @property
    def total_actions(self) -> int:
        return sum(self.actions.values())


def summarize_effort(rows: list[EffortRow], status: str = "done") -> list[dict[str, Any]]:
    """Per model version (None = no prediction): images, median seconds and actions, median changed
    fraction, actions per tool (summed). Only images with `status` count."""
    groups: dict[str | None, list[EffortRow]] = {}
    for row in rows:
        if row.status == status:
            groups.setdefault(row.model_version, []).append(row)
    out = []
    for version, group in sorted(groups.items(), key=lambda g: (g[0] is None, g[0] or "")):
        tools: Counter = Counter()
        for row in group:
            tools.update(row.actions)
        changed = [r.changed_fraction for r in group if r.changed_fraction is not None]
        out.append(
            {
                "model_version": version,
                "images": len(group),
                "median_seconds": statistics.median(r.seconds for r in group),
                "median_actions": statistics.median(r.total_actions for r in group),
                "median_changed_fraction": statistics.median(changed) if changed else None,
                "actions_by_tool": dict(tools.most_common()),
            }
        )
    return out
