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

__all__ = [
    "IDLE_GAP",
    "MANUAL",
    "EffortClock",
    "EffortRow",
    "action_key",
    "engine_of",
    "summarize_by_engine",
    "summarize_effort",
]

IDLE_GAP = 20.0
MANUAL = "manual"  # brush, eraser, fill, polygon: no engine decides the pixels
_MANUAL_TOOLS = frozenset({"brush", "eraser", "fill", "polygon"})


def action_key(tool: str, engine: str | None = None) -> str:
    """How an action is counted: ``tool`` or, for the click tools that ask an engine,
    ``tool:engine`` (``click:sam``), so effort can be read per engine."""
    return f"{tool}:{engine}" if engine else tool


def engine_of(key: str) -> str:
    """The engine an action key belongs to: ``click:sam`` → ``sam``; brush, eraser, fill and polygon
    → `MANUAL`; any other tool (wand, superpixel, or a click saved before engines were recorded)
    → the tool's own name."""
    tool, _, engine = key.partition(":")
    if engine:
        return engine
    return MANUAL if tool in _MANUAL_TOOLS else tool


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


def summarize_by_engine(rows: list[EffortRow], status: str = "done") -> list[dict[str, Any]]:
    """Which tool pays: per engine (`engine_of`), its actions over all `status` images and their share,
    the images it was used on, and — over the images where it was the main engine (most actions) —
    the median actions and seconds per image. Sorted by actions, most first."""
    totals: Counter = Counter()
    used: Counter = Counter()
    main: dict[str, list[EffortRow]] = {}
    for row in rows:
        if row.status != status or not row.actions:
            continue
        per: Counter = Counter()
        for key, count in row.actions.items():
            per[engine_of(key)] += int(count)
        totals.update(per)
        used.update(per.keys())
        main.setdefault(per.most_common(1)[0][0], []).append(row)
    everything = sum(totals.values())
    return [
        {
            "engine": engine,
            "actions": count,
            "share": count / everything,
            "images_used": used[engine],
            "images_mainly": len(main.get(engine, [])),
            "median_actions_mainly": statistics.median(r.total_actions for r in main[engine])
            if engine in main
            else None,
            "median_seconds_mainly": statistics.median(r.seconds for r in main[engine])
            if engine in main
            else None,
        }
        for engine, count in totals.most_common()
    ]
