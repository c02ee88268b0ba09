"""Adding images to a team project after `team create` (`segstudio team add FOLDER --db URL [PATH ...]`).

The lead puts new files into their copy of the folder and adds them: each gets a record (hash, size,
split by hash, status new) and - when the team keeps its images in the server - its bytes, all in one
transaction. Members' windows list them within seconds (the insert is announced, schema `_IMAGE_BYTES`).
Only leads can: annotators and reviewers have no INSERT right on the images or their bytes, so the
server refuses them (psql too).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segstudio.core import images as image_io
from segstudio.core.errors import ImageReadError, ProjectError
from segstudio.core.hashing import content_hash
from segstudio.core.natural_sort import natural_key
from segstudio.core.scan import FileStat, scan_images
from segstudio.core.store_records import db_path, split_for_hash
from segstudio.team.image_store import IMAGES_FLAG, check_size, upload_image

__all__ = ["CHUNK_BYTES", "AddReport", "add_images", "describe_report"]

#: Image bytes sent per commit by `team add --store-images` (resumable: a cut upload keeps whole chunks).
CHUNK_BYTES = 64 * 1024 * 1024


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rel_path -> why it was not added
    image_files: int = 0  # image contents uploaded now
    image_bytes: int = 0
    without_bytes: list[str] = field(default_factory=list)  # team images the server still has no bytes of
    removed: list[str] = field(default_factory=list)  # files of images a lead removed: left out


def _given(folder: Path, paths: Sequence[str]) -> list[FileStat]:
    stats = []
    for text in paths:
        path = Path(text)
        path = path if path.is_absolute() else folder / path
        try:
            rel = path.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            raise ProjectError(
                f"{text} is not inside the image folder {folder}; copy it there first"
            ) from None
        try:
            st = path.stat()
        except OSError:
            raise ProjectError(f"{text} does not exist in {folder}; check the path") from None
        if not path.is_file() or path.suffix.lower() not in image_io.IMAGE_EXTENSIONS:
            raise ProjectError(
                f"{text} is not an image file ({', '.join(sorted(image_io.IMAGE_EXTENSIONS))})"
            )
        stats.append(FileStat(rel, st.st_size, st.st_mtime_ns))
    return stats


def _upload_missing(project: Any, rows: list[tuple[FileStat, str, int, int]], report: AddReport) -> None:
    """Upload the bytes of the new images and of every team image the server lacks, from the lead's
    folder, one commit per ~CHUNK_BYTES: an interrupted upload keeps what was committed, and running
    the command again sends only the rest (content-addressed, so nothing is sent twice)."""
    folder: Path = project.image_dir
    lacking = project._rows(
        "SELECT DISTINCT ON (i.content_hash) i.rel_path, i.content_hash FROM segstudio.images i "
        "WHERE i.removed_at IS NULL AND i.error IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM segstudio.image_blobs b WHERE b.content_hash = i.content_hash)",
        (),
        "read which images the server lacks",
    )
    todo: dict[str, Path] = {}
    for rel_path, digest in lacking:
        path = folder / rel_path
        if path.is_file() and content_hash(path) == digest:
            todo.setdefault(digest, path)
        else:
            report.without_bytes.append(rel_path)  # not (or not this content) in the lead's folder
    for stat, digest, _, _ in rows:
        todo.setdefault(digest, folder / stat.rel_path)
    for path in todo.values():
        check_size(path, path.stat().st_size)
    pending = list(todo.items())
    while pending:
        chunk, size = [], 0
        while pending and (not chunk or size < CHUNK_BYTES):
            digest, path = pending.pop(0)
            chunk.append((digest, path))
            size += path.stat().st_size

        def work(conn: Any, chunk: list[tuple[str, Path]] = chunk) -> tuple[int, int]:
            sent = files = 0
            with conn.transaction(), conn.cursor() as cur:
                for digest, path in chunk:
                    count = upload_image(cur, path, digest)
                    files += 1 if count else 0
                    sent += count
            return files, sent

        files, sent = project._run(work, "add images (only leads add images)")
        report.image_files += files
        report.image_bytes += sent


def add_images(project: Any, paths: Sequence[str] = (), store_images: bool = False) -> AddReport:
    """Add `paths` (default: every image file of the folder the team project lacks) to the team project
    opened by a lead; `store_images` also uploads the bytes of every team image the server lacks and
    makes the team keep its images in the server from now on."""
    folder: Path = project.image_dir
    report = AddReport()
    known = {r.rel_path for r in project.images()}
    removed = {r.record.rel_path for r in project.removed_images()} - known
    if paths:
        stats = _given(folder, paths)
        for stat in stats:
            if stat.rel_path in known:
                report.skipped[stat.rel_path] = "already in the team project"
            elif stat.rel_path in removed:
                report.skipped[stat.rel_path] = "removed by a lead; `segstudio team restore` brings it back"
    else:
        stats = sorted(scan_images(folder, exclude=(project.state_dir,)).values())
        report.removed = sorted(stat.rel_path for stat in stats if stat.rel_path in removed)
    known |= removed  # a removed image is not added again as a new one: it is restored
    store = store_images or project.images_in_server
    rows = []
    now = time.time()
    val_fraction = project.val_fraction
    for stat in stats:
        if stat.rel_path in known:
            continue
        path = folder / stat.rel_path
        try:
            digest = content_hash(path)
            width, height = image_io.read_image_size(path, project.max_pixels)
        except ImageReadError as error:
            report.skipped[stat.rel_path] = f"unreadable: {error.reason}"
            continue
        except OSError as error:
            report.skipped[stat.rel_path] = f"cannot read the file ({error.strerror or error})"
            continue
        if store:
            check_size(path, stat.size)
        rows.append((stat, digest, width, height))

    if store:  # the bytes first, in resumable commits: a record never points at bytes not yet there
        _upload_missing(project, rows, report)

    def work(conn: Any) -> None:
        with conn.transaction(), conn.cursor() as cur:
            # one adder at a time: the new ids follow the highest one
            cur.execute("LOCK TABLE segstudio.images IN SHARE ROW EXCLUSIVE MODE")
            next_id = int(cur.execute("SELECT coalesce(max(id), 0) + 1 FROM segstudio.images").fetchone()[0])
            for offset, (stat, digest, width, height) in enumerate(rows):
                cur.execute(
                    "INSERT INTO segstudio.images(id, rel_path, sort_key, size, mtime_ns, width, height, "
                    "content_hash, status, split, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'new', %s, %s, %s)",
                    (next_id + offset, db_path(stat.rel_path), db_path(natural_key(stat.rel_path)), stat.size,
                     stat.mtime_ns, width, height, digest, split_for_hash(digest, val_fraction), now, now),
                )  # fmt: skip
            if store_images:
                cur.execute(
                    "INSERT INTO segstudio.meta(key, value) VALUES (%s, 'true'::jsonb) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (IMAGES_FLAG,),
                )

    if rows or store_images:
        project._run(work, "add images (only leads add images)")
    report.added = [stat.rel_path for stat, *_ in rows]
    return report


def describe_report(report: AddReport) -> str:
    """The CLI's summary lines."""
    lines = [
        f"added {len(report.added)} image(s)" + (f": {', '.join(report.added[:10])}" if report.added else "")
    ]
    if len(report.added) > 10:
        lines[0] += f" and {len(report.added) - 10} more"
    if report.image_files:
        lines.append(f"uploaded {report.image_files} image file(s), {report.image_bytes / 2**20:.1f} MiB")
    for rel_path, why in sorted(report.skipped.items()):
        lines.append(f"skipped {rel_path}: {why}")
    if report.removed:
        lines.append(
            f"left out {len(report.removed)} removed image(s) (e.g. {report.removed[0]}); "
            "`segstudio team restore` brings them back"
        )
    if report.without_bytes:
        lines.append(
            f"{len(report.without_bytes)} team image(s) are not in your folder, so the server still lacks their "
            f"bytes (e.g. {report.without_bytes[0]}); add them from a folder that has them"
        )
    return "\n".join(lines)
