"""Natural ("human") ordering of relative paths: img2 < img10, folder by folder, case-insensitive.

`natural_key` returns a plain string so the same order can be stored in SQLite and used in
`ORDER BY` (no Python collation needed on every query): each digit run becomes its length
(3 digits) followed by the digits without leading zeros, and the path separator becomes
"\\x01" so "a/x" sorts before "a b/x", as comparing component by component would.

The keys are stored in project databases (`images.sort_key`): changing `natural_key` needs a
schema migration that recomputes them.
"""

from __future__ import annotations

import re

__all__ = ["natural_key", "natural_sorted"]

_DIGITS = re.compile(r"\d+")


def _number(match: re.Match[str]) -> str:
    digits = match.group(0).lstrip("0") or "0"
    return f"{len(digits):03d}{digits}"


def natural_key(rel_path: str) -> str:
    """A string whose plain ordering is the natural ordering of `rel_path` ('/'-separated)."""
    return "\x01".join(_DIGITS.sub(_number, part.casefold()) for part in rel_path.split("/"))


def natural_sorted(paths: list[str]) -> list[str]:
    """Natural order; ties (e.g. 'a' vs 'A', 'x01' vs 'x1') are broken by the plain string."""
    return sorted(paths, key=lambda p: (natural_key(p), p))
