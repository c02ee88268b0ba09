"""Images kept in the team server, for teams without a shared folder (`team create --store-images`).

The bytes live in `segstudio.image_blobs`, content-addressed by the hash every image record already
carries (`content_hash`: BLAKE2b-128 of the file), so one photo under two names is stored once. A member
joins with only the URL: an image is fetched when first needed into this machine's cache
(`<team cache>/images/<hash>`), checked against its hash before it is kept (a corrupt transfer is
refused and fetched again, never kept), written atomically (never half a file), and checked again
when the cached file changed since. A background thread fetches the member's own queue ahead.

Every thread gets its own connection (the window's thread, the thumbnail thread, the prefetcher), so
a download never holds the project's connection, where saves and leases go.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segstudio.core.atomic import TEMP_SUFFIX
from segstudio.core.errors import ProjectError
from segstudio.core.hashing import content_hash
from segstudio.core.store_records import ImageRecord
from segstudio.team.connection import connect, describe, require_driver
from segstudio.team.errors import TeamConnectionError, TeamError

__all__ = [
    "IMAGES_FLAG",
    "MAX_IMAGE_BYTES",
    "PREFETCH_COUNT",
    "ServerImages",
    "bytes_hash",
    "check_size",
    "images_in_server",
    "upload_image",
]

#: `segstudio.meta` key set when the team keeps its images in the server.
IMAGES_FLAG = "images_in_server"
#: Largest image stored in the server. A bytea value may hold up to 1 GB, but the server and every
#: client hold a value whole in memory (several copies on the way); 256 MiB keeps that sane and is far
#: above any photo (a 100-megapixel camera JPEG is ~50 MB).
MAX_IMAGE_BYTES = 256 * 1024 * 1024
#: How many images of the member's queue are fetched ahead.
PREFETCH_COUNT = 20
#: Connections one client opens for images at most (the window's thread, thumbnails, prefetch share
#: them), so a team of 20 stays far below PostgreSQL's default max_connections of 100.
CONNECTIONS = 2
#: A download whose bytes do not match their hash is tried this many times before giving up.
FETCH_TRIES = 2


_HASH = re.compile(r"[0-9a-f]{32}")


def bytes_hash(data: bytes) -> str:
    """The image identity of `data`: what `core.hashing.content_hash` gives for a file holding it."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def images_in_server(conn: Any) -> bool:
    """Whether the team project on `conn` keeps its images' bytes (the flag `team create --store-images`
    sets); False on a server whose schema predates image storage."""
    row = conn.execute("SELECT value FROM segstudio.meta WHERE key = %s", (IMAGES_FLAG,)).fetchone()
    return bool(row and row[0] is True)


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size} bytes"


def check_size(path: Path, size: int) -> None:
    if size > MAX_IMAGE_BYTES:
        raise ProjectError(
            f"{path} is {_human(size)}; images kept in the team server may be at most "
            f"{_human(MAX_IMAGE_BYTES)} each. Keep such images in a shared folder instead (create the team "
            "project without --store-images), or split the image. Nothing was uploaded."
        )


def upload_image(cur: Any, path: Path, expected: str) -> int:
    """Store the bytes of `path` under `expected` (its record's hash) in the caller's transaction; the
    number of bytes sent (0 when the server had them already). The file must still be that image."""
    if cur.execute("SELECT 1 FROM segstudio.image_blobs WHERE content_hash = %s", (expected,)).fetchone():
        return 0
    data = path.read_bytes()
    check_size(path, len(data))
    if bytes_hash(data) != expected:
        raise ProjectError(
            f"{path} changed since the project last read it (its content hash differs); open the project "
            "again so it is re-read, then retry. Nothing was uploaded."
        )
    cur.execute(
        "INSERT INTO segstudio.image_blobs(content_hash, size, data) VALUES (%s, %s, %s) "
        "ON CONFLICT (content_hash) DO NOTHING",
        (expected, len(data), data),
    )
    return len(data)


def _write_cached(path: Path, data: bytes) -> None:
    """Atomic (a temp file beside it, then a rename): never a half-written cached image under its name.
    Not fsynced, unlike project files: this cache holds copies, and every session checks a cached file's
    hash before first use, so one torn by a power cut is fetched again (bench.team --store-images: 1-2 ms
    per photo this way, 7-21 ms fsynced)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as error:
        raise ProjectError(
            f"cannot create the image cache {path.parent} ({error.strerror or error})"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise ProjectError(
                f"cannot keep the team's image in this machine's cache {path.parent} "
                f"({error.strerror or error}); free some space there and open the image again"
            ) from None
        raise


class ServerImages:
    """This machine's cache of the team's images, filled from the server on demand."""

    def __init__(self, url: str, cache_dir: Path) -> None:
        self.url = url
        self.folder = cache_dir / "images"
        self._lock = threading.Lock()
        self._free = threading.Condition()  # guards the pool below
        self._idle: list[Any] = []
        self._open = 0  # connections that exist (idle or in use)
        self._verified: dict[Path, tuple[int, int]] = {}  # cached file -> (size, mtime_ns) when checked
        self._busy: dict[str, threading.Lock] = {}  # content hash -> held while it is being fetched
        self._closed = False
        self.fetched_bytes = 0  # downloaded by this client (bench and tests read it)

    def path(self, rec: ImageRecord) -> Path:
        """Where this image's bytes are (or will be) cached. The name is the hash the server lists,
        so it must look like one: never a path that leads out of the cache."""
        if not _HASH.fullmatch(rec.content_hash):
            raise ProjectError(
                f"the team server lists {rec.content_hash!r} as the content hash of {rec.rel_path}, which is not "
                "a SegStudio image hash; nothing was fetched. Ask your lead to check the team database."
            )
        return self.folder / rec.content_hash

    def is_cached(self, rec: ImageRecord) -> bool:
        return self.path(rec).is_file()

    def file(self, rec: ImageRecord) -> Path:
        """A cached file holding exactly this image's bytes, fetched from the server when missing or
        found changed (a cached file is re-checked whenever its size or time differs from the check).
        Two threads asking for one image download it once: the second waits for the first."""
        with self._lock:
            busy = self._busy.setdefault(rec.content_hash, threading.Lock())
        with busy:
            return self._file(rec)

    def _file(self, rec: ImageRecord) -> Path:
        path = self.path(rec)
        try:
            stat = path.stat()
        except FileNotFoundError:
            stat = None
        if stat is not None:
            if self._verified.get(path) == (stat.st_size, stat.st_mtime_ns):
                return path
            if content_hash(path) == rec.content_hash:
                self._verified[path] = (stat.st_size, stat.st_mtime_ns)
                return path
            path.unlink(missing_ok=True)  # damaged on this machine: fetch the team's copy again
        self._fetch(rec, path)
        return path

    def _fetch(self, rec: ImageRecord, path: Path) -> None:
        for _ in range(FETCH_TRIES):
            data = self._download(rec)
            if bytes_hash(data) == rec.content_hash:
                _write_cached(path, data)
                stat = path.stat()
                self._verified[path] = (stat.st_size, stat.st_mtime_ns)
                self.fetched_bytes += len(data)
                return
        raise TeamError(
            f"the team server's copy of {rec.rel_path} does not match its content hash after {FETCH_TRIES} "
            "downloads, so it was not kept; ask your lead to add the image again (`segstudio team add`)."
        )

    def _download(self, rec: ImageRecord) -> bytes:
        """The stored bytes (not yet checked)."""
        row = self._query(
            "SELECT data FROM segstudio.image_blobs WHERE content_hash = %s",
            (rec.content_hash,),
            f"fetch {rec.rel_path}",
        )
        if not row:
            raise ProjectError(
                f"{rec.rel_path} is neither in your image folder nor kept in the team server; ask your lead "
                "to add its bytes (`segstudio team add FOLDER --db URL --store-images`)"
            )
        return bytes(row[0][0])

    def queue_head(self, count: int) -> list[ImageRecord]:
        """The member's next `count` unfinished assigned images, in queue order (one small query on this
        store's connections, so the prefetcher never waits on, or holds, the project's connection)."""
        from segstudio.core.store_records import IMAGE_COLUMNS, image_record

        columns = ", ".join(f"i.{c.strip()}" for c in IMAGE_COLUMNS.split(","))
        rows = self._query(
            f"SELECT {columns} FROM segstudio.assignments a JOIN segstudio.images i ON i.id = a.image_id "
            "WHERE a.assignee = current_user AND i.removed_at IS NULL AND i.error IS NULL "
            "AND i.status NOT IN ('done', 'skipped') ORDER BY a.position, i.rel_path LIMIT %s",
            (count,),
            "read your queue",
        )
        return [image_record(row) for row in rows]

    def _query(self, sql: str, params: tuple[Any, ...], what: str) -> list[tuple[Any, ...]]:
        """Rows of one query on a pooled connection; one reconnect on a dropped link. Binary results:
        bytea arrives as it is, not as hex text (2x faster in bench.team --store-images)."""
        psycopg = require_driver()
        for attempt in (1, 2):
            conn = self._checkout()
            try:
                rows = conn.execute(sql, params, binary=True).fetchall()
            except psycopg.OperationalError as error:
                self._checkin(conn, broken=True)
                if attempt == 1:
                    continue
                raise TeamConnectionError(
                    f"lost the connection to the team server {describe(self.url)} while trying to {what}; "
                    f"check the network and try again. ({str(error).splitlines()[0] if str(error) else error})"
                ) from None
            except psycopg.Error as error:
                self._checkin(conn)
                raise TeamError(f"cannot {what} on the team server: {error}") from None
            self._checkin(conn)
            return rows  # type: ignore[no-any-return]
        raise AssertionError("unreachable")

    def _checkout(self) -> Any:
        """An idle pooled connection, a new one while fewer than CONNECTIONS exist, else wait for one."""
        with self._free:
            while True:
                if self._closed:
                    raise ProjectError("the team project is closed; open it again")
                if self._idle:
                    return self._idle.pop()
                if self._open < CONNECTIONS:
                    self._open += 1
                    break
                self._free.wait()
        try:
            return connect(self.url)
        except BaseException:
            with self._free:
                self._open -= 1
                self._free.notify()
            raise

    def _checkin(self, conn: Any, broken: bool = False) -> None:
        with self._free:
            if broken or self._closed or conn.closed:
                self._open -= 1
                with contextlib.suppress(Exception):
                    conn.close()
            else:
                self._idle.append(conn)
            self._free.notify()

    def close(self) -> None:
        with self._free:
            self._closed = True
            idle, self._idle = self._idle, []
            self._free.notify_all()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


class QueuePrefetcher:
    """A daemon thread that fetches the next images of the member's queue into the cache; `poke()` asks
    it to look again (after the project opened, after an image was opened, when the queue changed)."""

    def __init__(
        self, images: ServerImages, ready: Callable[[ImageRecord], bool], count: int = PREFETCH_COUNT
    ) -> None:
        self.images = images
        self.ready = ready  # True when the image needs no fetch (in the folder, or cached)
        self.count = count
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.idle = threading.Event()  # set when a pass found nothing left to fetch (tests wait on it)
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="segstudio-team-prefetch", daemon=True)

    def start(self) -> QueuePrefetcher:
        self._thread.start()
        self.poke()
        return self

    def poke(self) -> None:
        self.idle.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                for rec in self.images.queue_head(self.count):
                    if self._stop.is_set():
                        return
                    if not self.ready(rec):
                        self.images.file(rec)
            except Exception as error:  # the window fetches on demand anyway; say why in the log
                self.errors.append(str(error))
                from segstudio.core.logs import log_exception

                log_exception("team image prefetch", error)
            if not self._wake.is_set():
                self.idle.set()
