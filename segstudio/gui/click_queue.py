"""What the smart tools' click worker is asked, in the order the user asked it (gui/smart_tools.py).

Why a queue on the GUI side: a click engine may take a second per click (GrabCut, a click model), and
the GUI thread must never wait for it, yet the user's semantics are ordered - two quick clicks give
the result of both, `Enter` after a click accepts the object *with* that click, `Backspace` drops the
latest click. So every press becomes a `ClickOp`; at most one request is on the worker at a time; ops
queued behind it for the same object are folded into the next request (the engines take the whole
prompt list each time, so the newest list supersedes the lists in between without changing the
result), and an `accept` waits its turn behind them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from segstudio.core.interactive.prompts import Point, Prompts

__all__ = ["PROMPT_KINDS", "ClickOp", "ClickRequest", "add_prompt"]

PROMPT_KINDS = ("click", "box", "scribble", "undo")  # ops that change the open object's prompts


@dataclass(frozen=True)
class ClickOp:
    """One user action on the open object: `kind` is a PROMPT_KINDS entry or "accept"."""

    kind: str
    args: tuple = ()
    active_class: int = 0
    at: float = field(default_factory=time.perf_counter)  # when the user pressed (latency: press -> shown)


@dataclass(eq=False)
class ClickRequest:
    """The request on the worker: `token` names it (a newer token makes its result stale)."""

    token: int
    session: Any  # core.interactive.click_session.ClickSession
    document: Any  # core.document.MaskDocument the result belongs to
    ops: list[ClickOp]
    prompts: Prompts  # what was sent (the GUI's copy at that moment)


def add_prompt(prompts: Prompts, op: ClickOp) -> None:
    """Apply a prompt op to the GUI thread's copy of the open object's prompts."""
    if op.kind == "click":
        x, y, positive = op.args
        (prompts.positives if positive else prompts.negatives).append((float(x), float(y)))
    elif op.kind == "box":
        x0, y0, x1, y1 = op.args
        prompts.box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    elif op.kind == "scribble":
        points: list[Point] = op.args[0]
        prompts.scribbles.append([(float(x), float(y)) for x, y in points])
    elif op.kind == "undo":
        prompts.drop_latest()
    else:
        raise ValueError(f"not a prompt op: {op.kind}")
