"""The one way SegStudio writes a duration: "42s", "2m 05s", "3h 01m" (the panel, the console, the log)."""

from __future__ import annotations

import math

__all__ = ["format_duration"]


def format_duration(seconds: float | None, precise: bool = False) -> str:
    """`seconds` for people; "?" when unknown (None, NaN, negative). `precise` keeps two decimals under
    a minute ("0.42s", for the log's timings of fast work)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if precise and seconds < 59.995:
        return f"{seconds:.2f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
