"""Changes waiting for the team server: a durable queue in the member's cache folder.

When the server cannot be reached, a save is not lost and the window does not wait: the mask is written
here (one atomic file per image: a JSON header line, then the PNG bytes) and sent when the server is
back. One entry per image: a later save of the same image replaces the earlier entry's pixels but keeps
the version it started from, so the server still refuses it if someone else saved in between. A queued
save refused as stale is never applied: its pixels are kept as a local copy under `kept/`, and the
member is told (`SaveConflict`).

Status and split changes (mark done, skip, move to val) queue in the same entry, *after* its mask save:
they are sent in that order, and a status change is refused like a save when someone else saved the
image after the version the member saw. A later save supersedes a queued status change (the save carries
its own status), exactly as applying them one by one would end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from segstudio.core.atomic import atomic_write_bytes

__all__ = ["Outbox", "PendingSave", "SaveConflict"]

SUFFIX = ".save"


@dataclass(frozen=True)
class PendingSave:
    image_id: int
    rel_path: str
    base: int | None  # the server version the member started from
    status: str  # the saved version's status ("" when the entry holds no save)
    png: bytes | None  # None: a "reset to prediction" (a version without a mask)
    queued_at: float
    save: bool = True  # False: only status/split changes are queued for this image
    then_status: str | None = None  # a status change made after the save (or on `base` when no save)
    then_split: str | None = None  # a split change (train/val)

    @property
    def changes(self) -> list[str]:
        """What is queued, for messages: 'mask', 'status done', 'split val'."""
        found = ["mask"] if self.save else []
        if self.then_status is not None:
            found.append(f"status {self.then_status}")
        if self.then_split is not None:
            found.append(f"split {self.then_split}")
        return found


@dataclass(frozen=True)
class SaveConflict:
    """A queued save the server refused on reconnect (someone saved first); the pixels are kept locally."""

    rel_path: str
    kept_at: Path | None  # the local copy of the member's pixels (PNG), None for a queued reset
    message: str


class Outbox:
    """The queue folder `<cache>/outbox` (pending saves) and `<cache>/kept` (refused saves' pixels)."""

    def __init__(self, cache_dir: Path) -> None:
        self.folder = cache_dir / "outbox"
        self.kept_folder = cache_dir / "kept"

    def _path(self, image_id: int) -> Path:
        return self.folder / f"{int(image_id)}{SUFFIX}"

    def put(self, image_id: int, rel_path: str, base: int | None, status: str, png: bytes | None) -> None:
        """Queue (or replace) the save of one image; durable once this returns (fsynced, atomic rename).
        A status change queued before it is superseded (the save carries its own status)."""
        earlier = self.get(image_id)
        self._write(
            PendingSave(
                int(image_id),
                rel_path,
                earlier.base if earlier is not None else base,  # the version the member started from
                status,
                png,
                time.time(),
                save=True,
                then_status=None,
                then_split=earlier.then_split if earlier is not None else None,
            )
        )

    def put_change(
        self,
        image_id: int,
        rel_path: str,
        base: int | None,
        status: str | None = None,
        split: str | None = None,
    ) -> None:
        """Queue a status and/or split change of one image behind its queued save (if any); durable on return."""
        earlier = self.get(image_id)
        if earlier is None:
            earlier = PendingSave(int(image_id), rel_path, base, "", None, 0.0, save=False)
        self._write(
            replace(
                earlier,
                queued_at=time.time(),
                then_status=status if status is not None else earlier.then_status,
                then_split=split if split is not None else earlier.then_split,
            )
        )

    def saved(self, entry: PendingSave, version: int) -> PendingSave | None:
        """The entry's save landed as `version`: what is left queued behind it (None: nothing)."""
        if entry.then_status is None and entry.then_split is None:
            self.done(entry)
            return None
        rest = replace(entry, base=version, status="", png=None, save=False)
        self._write(rest)
        return rest

    def _write(self, entry: PendingSave) -> None:
        header = {
            "image_id": entry.image_id,
            "rel_path": entry.rel_path,
            "base": entry.base,
            "status": entry.status,
            "has_mask": entry.png is not None,
            "queued_at": entry.queued_at,
            "save": entry.save,
            "then_status": entry.then_status,
            "then_split": entry.then_split,
        }
        data = json.dumps(header).encode() + b"\n" + (entry.png or b"")
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._path(entry.image_id), data)

    def get(self, image_id: int) -> PendingSave | None:
        return self._read(self._path(image_id))

    def _read(self, path: Path) -> PendingSave | None:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        head, _, png = data.partition(b"\n")
        try:
            h = json.loads(head)
            return PendingSave(
                int(h["image_id"]),
                str(h["rel_path"]),
                None if h["base"] is None else int(h["base"]),
                str(h["status"]),
                png if h["has_mask"] else None,
                float(h["queued_at"]),
                bool(h.get("save", True)),  # entries written before status changes queued: saves
                None if h.get("then_status") is None else str(h["then_status"]),
                None if h.get("then_split") is None else str(h["then_split"]),
            )
        except (ValueError, KeyError, TypeError):
            return None  # not one of ours (atomic writes never leave a half file)

    def pending(self) -> list[PendingSave]:
        """Every queued save, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [self._read(p) for p in self.folder.glob(f"*{SUFFIX}")]
        return sorted((p for p in found if p is not None), key=lambda p: p.queued_at)

    def done(self, entry: PendingSave) -> None:
        """The save landed: drop it, unless a newer save of the image replaced it meanwhile."""
        current = self.get(entry.image_id)
        if current is not None and current.queued_at == entry.queued_at:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(entry.image_id))

    def keep(self, entry: PendingSave) -> Path | None:
        """Move a refused save's pixels to `kept/` (a PNG named after the image and the time); drop the entry."""
        kept: Path | None = None
        if entry.save and entry.png is not None:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", entry.rel_path.rsplit(".", 1)[0])
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(entry.queued_at))
            kept = self.kept_folder / f"{stem}.yours-{stamp}.png"
            atomic_write_bytes(kept, entry.png)
        self.done(entry)
        return kept
