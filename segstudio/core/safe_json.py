"""JSON from files a stranger wrote: bounded nesting, and ids that are finite whole numbers.

Why: `json.loads` of `[[[[...` 100 000 levels deep raises RecursionError (a traceback, not a
message), and even a structure that parses can blow the stack of the code that walks it later
(a `repr` in an error message). `1e400` parses as `inf`, and `int(inf)` raises OverflowError.
Every dataset file, scheme and manifest goes through `load_json_file` / `parse_json`, and every
id through `whole_number`, so such files become the caller's own `SegStudioError` naming the
file and what to fix.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.errors import SegStudioError

__all__ = ["MAX_JSON_DEPTH", "load_json_file", "parse_json", "whole_number"]

#: Deepest nesting accepted (COCO polygons are 4 deep, labelme shapes 4, schemes 3).
MAX_JSON_DEPTH = 64
#: Largest |id| accepted: ids are stored in SQLite INTEGER and numpy int64 columns.
_MAX_ID = 2**63 - 1


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _nesting(text: str) -> int:
    """The deepest bracket nesting of JSON `text`, strings left out; vectorised, so it costs a
    fraction of the parse even for a 100 MB COCO file, and it runs *before* the parser recurses."""
    bare = np.frombuffer(_STRINGS.sub("", text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    opening = (bare == ord("[")) | (bare == ord("{"))
    brackets = np.flatnonzero(opening | (bare == ord("]")) | (bare == ord("}")))
    if not len(brackets):
        return 0
    return int(np.cumsum(np.where(opening[brackets], 1, -1), dtype=np.int64).max())


def parse_json(
    text: str, where: str, error: type[SegStudioError], todo: str = "fix or remove the file"
) -> Any:
    """`text` parsed as JSON, nesting at most MAX_JSON_DEPTH; `error(message)` otherwise."""
    if _nesting(text) > MAX_JSON_DEPTH:
        raise error(f"{where} nests lists or objects more than {MAX_JSON_DEPTH} levels deep; {todo}")
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen below MAX_JSON_DEPTH; kept so it never becomes a traceback
        raise error(f"{where} nests lists or objects too deeply; {todo}") from None
    except (ValueError, TypeError) as problem:  # JSONDecodeError, too many digits in an integer
        raise error(f"{where} is not valid JSON ({problem}); {todo}") from None


def load_json_file(
    path: str | os.PathLike[str],
    error: type[SegStudioError],
    todo: str = "fix or remove the file",
    encoding: str = "utf-8-sig",
) -> Any:
    """A JSON file read and parsed with `parse_json`; unreadable files are `error` too."""
    path = Path(path)
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{path} does not exist; check the path") from None
    except (OSError, UnicodeError) as problem:
        reason = getattr(problem, "strerror", None) or problem
        raise error(f"cannot read {path} ({reason}); {todo}") from None
    return parse_json(text, str(path), error, todo)


def whole_number(value: object, where: str, error: type[SegStudioError]) -> int:
    """`value` as an int when it is a finite whole number of int64 range (2 and 2.0 alike; not True)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _MAX_ID:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise error(f"{where} must be a whole number, got {shown}; fix the file")
    return value
