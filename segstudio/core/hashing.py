"""File and data hashing in one place.

Files are read in chunks so a large checkpoint or photo never sits in memory at once. Two
algorithms on purpose: BLAKE2b for image identity in the project (fast, stored in the database)
and SHA-256 for keys written into export and training manifests (a widely known format).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

__all__ = ["content_hash", "sha256_file", "sha256_json", "stable_fraction", "update_from_file"]

_CHUNK = 1 << 20


def update_from_file(digest: Any, path: str | os.PathLike[str]) -> Any:
    """Feed the bytes of `path` into a hashlib object (in 1 MiB chunks) and return it; OSError passes."""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest


def content_hash(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-128 of the file bytes, hex (fast, and collisions are not a practical concern)."""
    return str(update_from_file(hashlib.blake2b(digest_size=16), path).hexdigest())


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file bytes, hex."""
    return str(update_from_file(hashlib.sha256(), path).hexdigest())


def sha256_json(payload: Any) -> str:
    """SHA-256 of a JSON-serialisable value with sorted keys: a stable key for 'has anything changed'."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def stable_fraction(key: str, salt: str = "") -> float:
    """A pseudo-random number in [0, 1) fixed by `key` (and `salt`, for an order independent of an
    unsalted use of the same key): the one way SegStudio picks a split or an order by hashing
    (project val split, export's random split, val reservation order, CRF held-out images)."""
    data = (salt + key).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") / 2.0**64
