"""Download a published SAM checkpoint on demand, like torchvision's weights: resumable, verified.

The GUI (*Model → Get a SAM model…*) and the tests call `download`; nothing here runs at import.
Pure standard library (urllib, hashlib) and no Qt, so the logic is tested against a local HTTP
server without a window.

How a file lands in the cache (`cache_dir()`, `$SEGSTUDIO_SAM_CACHE` overrides it):
- bytes go to ``<file>.part``; an interrupted or cancelled transfer leaves that ``.part`` so the
  next *Get* resumes it with an HTTP ``Range`` request (a server that ignores Range restarts it);
- the finished ``.part`` is checked against the catalogue's size and SHA-256; a mismatch deletes it
  (a wrong file is never kept, not even for resume), a match is renamed to ``<file>`` atomically.
So a file named ``<file>`` in the cache has always passed its hash; ``.part`` never loads.
An entry without a verified SHA-256 is refused before any byte is fetched.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from segstudio.core.atomic import fsync_dir
from segstudio.core.errors import CancelledError, SegStudioError

__all__ = [
    "CATALOG",
    "CATALOG_ENV",
    "DownloadError",
    "OfflineError",
    "SamCheckpoint",
    "cache_dir",
    "cached_path",
    "catalog",
    "download",
    "sha256_of",
]

CHUNK = 1 << 20
TIMEOUT_S = 30.0
BASE_URL_ENV = "SEGSTUDIO_SAM_BASE_URL"  # tests (and mirrors): serve every file from this base URL
CACHE_ENV = "SEGSTUDIO_SAM_CACHE"
CATALOG_ENV = "SEGSTUDIO_SAM_CATALOG"  # a JSON list of entries replacing CATALOG (mirrors, GUI tests)


class DownloadError(SegStudioError):
    """A transfer that did not give a verified file; the message says what is left and what to do."""


class OfflineError(DownloadError):
    """The server could not be reached at all (no network, DNS, refused)."""


@dataclass(frozen=True)
class SamCheckpoint:
    """One published checkpoint. `sha256`/`size` are None where we could not verify them: such an
    entry is listed (so the user sees it exists) but never downloaded."""

    key: str
    name: str
    filename: str
    url: str
    size: int | None
    sha256: str | None
    licence: str
    arch: str

    @property
    def verified(self) -> bool:
        return self.sha256 is not None


# Sizes and SHA-256 of Meta's files as published on dl.fbaipublicfiles.com (Content-Length and the
# hashes that independent projects pin; they agree). MobileSAM's file is served from the authors'
# GitHub repository without a published hash, so it is listed as unverified.
CATALOG: tuple[SamCheckpoint, ...] = (
    SamCheckpoint(
        "mobile_sam",
        "MobileSAM (TinyViT, ~39 MB)",
        "mobile_sam.pt",
        "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        None,
        None,
        "Apache-2.0",
        "vit_t",
    ),
    SamCheckpoint(
        "sam_vit_b",
        "SAM ViT-B",
        "sam_vit_b_01ec64.pth",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        375_042_383,
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        "Apache-2.0",
        "vit_b",
    ),
    SamCheckpoint(
        "sam_vit_l",
        "SAM ViT-L",
        "sam_vit_l_0b3195.pth",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        1_249_524_607,
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        "Apache-2.0",
        "vit_l",
    ),
    SamCheckpoint(
        "sam_vit_h",
        "SAM ViT-H",
        "sam_vit_h_4b8939.pth",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
        2_564_550_879,
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        "Apache-2.0",
        "vit_h",
    ),
)


def catalog(
    entries: tuple[SamCheckpoint, ...] | None = None, base_url: str | None = None
) -> list[SamCheckpoint]:
    """The known checkpoints (``$SEGSTUDIO_SAM_CATALOG``, a JSON list of `SamCheckpoint` fields,
    replaces them); with `base_url` (or ``$SEGSTUDIO_SAM_BASE_URL``) each is fetched from
    ``<base_url>/<filename>`` instead of its source (a mirror, or the tests' local server)."""
    base = base_url or os.environ.get(BASE_URL_ENV)
    if entries is None and os.environ.get(CATALOG_ENV):
        entries = _read_catalog(Path(os.environ[CATALOG_ENV]))
    items = list(CATALOG if entries is None else entries)
    if base:
        items = [replace(e, url=f"{base.rstrip('/')}/{e.filename}") for e in items]
    return items


def _read_catalog(path: Path) -> tuple[SamCheckpoint, ...]:
    try:
        return tuple(SamCheckpoint(**item) for item in json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as error:
        raise DownloadError(f"${CATALOG_ENV}={path} is not a SAM catalogue (a JSON list): {error}") from None


def cache_dir() -> Path:
    """Where downloaded checkpoints live: ``$SEGSTUDIO_SAM_CACHE``, else the user cache
    (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/segstudio/sam``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "segstudio" / "sam"


def cached_path(entry: SamCheckpoint, directory: Path | None = None) -> Path | None:
    """The verified file if it was downloaded before (only verified files carry the final name)."""
    path = (directory or cache_dir()) / entry.filename
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_into(digest, path)
    return digest.hexdigest()


def download(
    entry: SamCheckpoint,
    directory: Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Fetch `entry` into `directory` (resuming a ``.part``), verify size and SHA-256, rename into
    place and return the path. `progress(done, total)` after each chunk; `should_stop()` polled
    between chunks (→ `CancelledError`, the ``.part`` kept for resume)."""
    if not entry.verified:
        raise DownloadError(
            f"{entry.name}: no published SHA-256 we could verify, so SegStudio will not use a downloaded"
            f" copy. Download {entry.url} yourself and load it with Model → Use a file…"
        )
    directory = directory or cache_dir()
    final = directory / entry.filename
    if final.is_file():
        return final
    directory.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if entry.size is not None and have > entry.size:
        part.unlink()
        have = 0
    digest = hashlib.sha256()
    if entry.size is None or have < entry.size:
        have = _fetch(entry, part, digest, progress, should_stop, timeout)
    else:
        _hash_into(digest, part)
    if entry.size is not None and have != entry.size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{entry.name}: the server sent {have} bytes, {entry.size} expected; the file was removed. Try again."
        )
    if digest.hexdigest() != entry.sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{entry.name}: SHA-256 mismatch (got {digest.hexdigest()[:12]}…, expected {entry.sha256[:12]}…);"
            " the file was removed. The source may have changed or the transfer was corrupted; try again"
            " or use Model → Use a file…"
        )
    os.replace(part, final)
    fsync_dir(directory)
    return final


def _hash_into(digest: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)


def _fetch(
    entry: SamCheckpoint,
    part: Path,
    digest: hashlib._Hash,
    progress: Callable[[int, int | None], None] | None,
    should_stop: Callable[[], bool] | None,
    timeout: float,
) -> int:
    """Append the rest of the file to `part` (resuming from its current size), feeding `digest`
    with every byte the file holds; return the bytes now held."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(entry.url, headers={"User-Agent": "segstudio"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing past our .part: restart it from zero next time
            part.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: the server answered HTTP {error.code} for {entry.url}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OfflineError(
            f"Cannot reach {urllib.request.urlparse(entry.url).netloc} ({reason}): you seem to be offline;"
            " use Model → Use a file… with a checkpoint you already have."
        ) from None
    with response:
        if have and response.status == 206:
            _hash_into(digest, part)
        else:  # a fresh start, or a server that ignored Range: write from byte 0
            have = 0
        length = response.headers.get("Content-Length")
        total = entry.size or (have + int(length) if length else None)
        mode = "ab" if have else "wb"
        with open(part, mode) as out:
            try:
                while True:
                    if should_stop is not None and should_stop():
                        raise CancelledError(
                            f"{entry.name}: download cancelled at {have} bytes; Get it again to resume."
                        )
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    have += len(chunk)
                    if progress is not None:
                        progress(have, total)
            except (OSError, http.client.HTTPException) as error:
                raise DownloadError(
                    f"{entry.name}: the transfer broke off at {have} of {total or '?'} bytes ({error});"
                    f" the partial file {part.name} is kept and Get resumes it."
                ) from None
            out.flush()
            os.fsync(out.fileno())
    if total is not None and have < total:
        raise DownloadError(
            f"{entry.name}: the transfer broke off at {have} of {total} bytes; the partial file"
            f" {part.name} is kept and Get resumes it."
        )
    return have
