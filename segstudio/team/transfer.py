"""Moving a whole project between a local folder and the team server, without losing anything.

`create_team_project` (`segstudio team create FOLDER --db URL`): the lead's local project goes to an
empty database in one transaction - image records with their ids, masks and prediction files as their
exact PNG bytes, settings, scheme, model versions with their checkpoints, effort. A failure leaves the
database as it was.

With `store_images` (`--store-images`) every image's bytes go up too, in the same transaction,
content-addressed by the record's hash (team.image_store), so members join with only the URL.

`pull_team_project` (`segstudio team pull URL FOLDER`): a local project made back from the server
(the current mask version of each image; effort summed over members; the images themselves when the
server keeps them and the folder lacks them).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from segstudio.core import store_schema
from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.errors import ProjectError
from segstudio.core.hashing import content_hash
from segstudio.core.project import Project, _checked_image_dir, _resolve_state_dir
from segstudio.core.store_masks import STATE_DIR_NAME
from segstudio.team import schema
from segstudio.team.connection import connect, describe, require_driver
from segstudio.team.errors import TeamError
from segstudio.team.image_store import IMAGES_FLAG, bytes_hash, check_size, images_in_server, upload_image
from segstudio.team.server_paths import server_named_path

__all__ = ["create_team_project", "pull_team_project"]

_IMAGE_COLS = (
    "id, rel_path, sort_key, size, mtime_ns, width, height, content_hash, status, split, model_version, "
    "mean_confidence, error, created_at, updated_at, removed_at"
)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _lead_only(conn: Any, url: str) -> None:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) "
        "AND pg_has_role(current_user, %s, 'MEMBER')",
        (schema.LEAD, schema.LEAD),
    ).fetchone()
    if not row or not row[0]:
        raise TeamError(
            f"{describe(url)}: only a lead (a member of segstudio_lead) can create a team project; run "
            "`segstudio team init-server` on the server first and grant yourself the lead role (docs/team.md)."
        )


def create_team_project(
    folder: str | os.PathLike[str],
    url: str,
    state_dir: str | os.PathLike[str] | None = None,
    store_images: bool = False,
) -> dict[str, int]:
    """Upload the local project of `folder` into the empty database at `url`; counts of what went up.
    `store_images`: the images' bytes too (one copy per distinct content)."""
    psycopg = require_driver()
    conn = connect(url)
    try:
        _lead_only(conn, url)
        if schema.read_version(conn) is not None:
            raise TeamError(
                f"the database {describe(url)} already holds a team project; join it with "
                f"`segstudio FOLDER --db URL`, or create the team project in a new database."
            )
        with Project.open(folder, state_dir) as local:
            if store_images:  # refuse an oversized image before anything is sent
                for rec in local.images():
                    if not rec.error:
                        path = local.image_path(rec)
                        check_size(path, path.stat().st_size)
            try:
                with (
                    conn.transaction()
                ):  # schema and data together: a failed upload leaves the database empty
                    schema.migrate(conn)
                    counts = _upload(conn, local)
                    if store_images:
                        counts.update(_upload_images(conn, local))
            except psycopg.Error as error:
                raise TeamError(
                    f"the upload to {describe(url)} failed, nothing was kept there: {error}"
                ) from None
        return counts
    finally:
        conn.close()


def _upload(conn: Any, local: Project) -> dict[str, int]:
    db = local._db
    layout = local.layout
    meta = [
        (k, v) for k, v in db.execute("SELECT key, value FROM meta") if k not in ("image_dir", IMAGES_FLAG)
    ]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO segstudio.meta(key, value) VALUES (%s, %s::jsonb)", meta)
        settings = db.execute("SELECT key, value FROM settings").fetchall()
        cur.executemany("INSERT INTO segstudio.settings(key, value) VALUES (%s, %s::jsonb)", settings)
        images = db.execute(f"SELECT {_IMAGE_COLS} FROM images ORDER BY id").fetchall()
        placeholders = ", ".join(["%s"] * 16)
        cur.executemany(f"INSERT INTO segstudio.images({_IMAGE_COLS}) VALUES ({placeholders})", images)
        masks = 0
        predictions = 0
        for row in images:
            image_id, status, model_version = row[0], row[8], row[10]
            png = _read(layout.mask_path(image_id))
            if png is not None:
                cur.execute(
                    "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s, NULL, %s, %s)",
                    (image_id, png, status),
                )
                masks += 1
            labels = _read(layout.prediction_path(image_id))
            if labels is not None:
                cur.execute(
                    "INSERT INTO segstudio.predictions(image_id, labels, confidence, raw_labels, model_version) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (image_id, labels, _read(layout.confidence_path(image_id)),
                     _read(layout.raw_prediction_path(image_id)), model_version or "unknown"),
                )  # fmt: skip
                predictions += 1
        # the mask trigger stamped status/updated_at: give every record back its own values
        cur.executemany(
            "UPDATE segstudio.images SET status = %s, updated_at = %s WHERE id = %s",
            [(row[8], row[14], row[0]) for row in images],
        )
        effort = db.execute(
            "SELECT image_id, active_seconds, actions, changed_fraction, updated_at FROM effort"
        ).fetchall()
        cur.executemany(
            "INSERT INTO segstudio.effort(image_id, active_seconds, actions, changed_fraction, updated_at) "
            "VALUES (%s, %s, %s::jsonb, %s, %s)",
            effort,
        )
        versions = db.execute(
            "SELECT version, checkpoint_path, arch, metrics, parent, created_at FROM model_versions"
        ).fetchall()
        for version, stored, arch, metrics, parent, created in versions:
            path = Path(stored) if Path(stored).is_absolute() else local.state_dir / stored
            name = stored if not Path(stored).is_absolute() else f"models/{version}/{path.name}"
            cur.execute(
                "INSERT INTO segstudio.model_versions(version, checkpoint_name, checkpoint, arch, metrics, parent, "
                "created_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)",
                (version, name, _read(path), arch, metrics, parent, created),
            )
    return {"images": len(images), "masks": masks, "predictions": predictions, "effort": len(effort),
            "model_versions": len(versions)}  # fmt: skip


def _upload_images(conn: Any, local: Project) -> dict[str, int]:
    """Every readable image's bytes, once per distinct content, and the flag members' clients read."""
    sent = stored = 0
    with conn.cursor() as cur:
        for rec in local.images():
            if rec.error:
                continue  # an unreadable file has no team image to show
            size = upload_image(cur, local.image_path(rec), rec.content_hash)
            stored += 1 if size else 0
            sent += size
        cur.execute(
            "INSERT INTO segstudio.meta(key, value) VALUES (%s, 'true'::jsonb) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (IMAGES_FLAG,),
        )
    return {"image_files": stored, "image_bytes": sent}


def pull_team_project(
    url: str, folder: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None
) -> dict[str, int]:
    """Make a local project for `folder` from the team project at `url`; counts of what came down."""
    psycopg = require_driver()
    image_dir = Path(folder).expanduser().absolute()
    target = Path(state_dir).expanduser().absolute() if state_dir is not None else image_dir / STATE_DIR_NAME
    if (target / store_schema.DB_NAME).exists():
        raise ProjectError(
            f"{target} already holds a local project; move it away first, or pull into another state folder "
            "with --project-dir DIR. Nothing was changed."
        )
    conn = connect(url)
    existed = target.exists()
    folder_existed = image_dir.exists()
    written: list[Path] = []  # images written into the folder: removed again if the pull fails
    try:
        version = schema.read_version(conn)
        schema.check_version(version, describe(url))
        with_images = images_in_server(conn)
        if with_images and not folder_existed:
            image_dir.mkdir(parents=True)
        image_dir = _checked_image_dir(image_dir)
        state = _resolve_state_dir(image_dir, state_dir)
        project = Project(image_dir, state)
        project._process_lock.acquire()
        try:
            store_schema.connect(project._store, state / store_schema.DB_NAME, image_dir, state)
            project.layout.create()
            with conn.transaction():
                counts = _download(conn, project)
                if with_images:
                    counts.update(_download_images(conn, project, written))
        except psycopg.Error as error:
            raise TeamError(f"reading the team project {describe(url)} failed: {error}") from None
        finally:
            project.close()
        return counts
    except BaseException:
        if not existed:  # a pull that fails leaves no half-made project behind
            shutil.rmtree(target, ignore_errors=True)
        for path in written:
            path.unlink(missing_ok=True)
        if not folder_existed:
            shutil.rmtree(image_dir, ignore_errors=True)
        raise
    finally:
        conn.close()


def _download_images(conn: Any, local: Project, written: list[Path]) -> dict[str, int]:
    """Write the server's image bytes into the folder where it lacks them (hash checked before each
    atomic write; file times set to the record's, so the local project finds nothing changed). A file
    already there with other content is left alone and refused: the pull never overwrites your files."""
    rows = conn.execute(
        "SELECT i.rel_path, i.content_hash, i.mtime_ns, b.content_hash IS NOT NULL FROM segstudio.images i "
        "LEFT JOIN segstudio.image_blobs b ON b.content_hash = i.content_hash "
        "WHERE i.removed_at IS NULL AND i.error IS NULL ORDER BY i.id"
    ).fetchall()
    todo = []
    for rel_path, digest, mtime_ns, stored in rows:
        path = server_named_path(local.image_dir, rel_path, "the image path", for_writing=True)
        if path.exists():
            if content_hash(path) != digest:
                raise ProjectError(
                    f"{path} already exists with other content than the team's image; move it away or pull into "
                    "another folder. Nothing was changed."
                )
            continue
        if stored:
            todo.append((path, digest, int(mtime_ns)))
    size = 0
    for path, digest, mtime_ns in todo:
        row = conn.execute(
            "SELECT data FROM segstudio.image_blobs WHERE content_hash = %s", (digest,), binary=True
        ).fetchone()
        data = bytes(row[0])
        if bytes_hash(data) != digest:
            raise TeamError(
                f"the team server's copy of {path.name} does not match its content hash; nothing was pulled. "
                "Ask your lead to add the image again (`segstudio team add`)."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        written.append(path)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        size += len(data)
    return {"image_files": len(todo), "image_bytes": size}


def _download(conn: Any, local: Project) -> dict[str, int]:
    layout = local.layout
    images = conn.execute(f"SELECT {_IMAGE_COLS} FROM segstudio.images ORDER BY id").fetchall()
    meta = conn.execute("SELECT key, value FROM segstudio.meta WHERE key <> %s", (IMAGES_FLAG,)).fetchall()
    settings = conn.execute("SELECT key, value FROM segstudio.settings").fetchall()
    effort = conn.execute(
        "SELECT image_id, sum(active_seconds), jsonb_agg(actions), "
        "(array_agg(changed_fraction ORDER BY updated_at DESC) FILTER (WHERE changed_fraction IS NOT NULL))[1], "
        "max(updated_at) FROM segstudio.effort GROUP BY image_id"
    ).fetchall()
    versions = conn.execute(
        "SELECT version, checkpoint_name, checkpoint, arch, metrics, parent, created_at FROM segstudio.model_versions"
    ).fetchall()
    masks = 0
    for image_id, png in conn.execute(
        "SELECT i.id, v.png FROM segstudio.images i JOIN segstudio.mask_versions v ON v.id = i.mask_head "
        "WHERE v.png IS NOT NULL"
    ):
        atomic_write_bytes(layout.mask_path(image_id), bytes(png))
        masks += 1
    predictions = 0
    for image_id, labels, confidence, raw in conn.execute(
        "SELECT image_id, labels, confidence, raw_labels FROM segstudio.predictions"
    ):
        if confidence is not None:
            atomic_write_bytes(layout.confidence_path(image_id), bytes(confidence))
        if raw is not None:
            atomic_write_bytes(layout.raw_prediction_path(image_id), bytes(raw))
        atomic_write_bytes(layout.prediction_path(image_id), bytes(labels))  # last: complete when visible
        predictions += 1
    rows = []
    for version, name, data, arch, metrics, parent, created in versions:
        path = server_named_path(local.state_dir, name, f"the checkpoint of model version {version!r}", True)
        if data is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, bytes(data))
        rows.append((version, name, arch, json.dumps(metrics), parent, created))
    with local._store.transaction() as db:
        db.executemany(f"INSERT INTO images({_IMAGE_COLS}) VALUES ({', '.join(['?'] * 16)})", images)
        for key, value in meta:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
        db.executemany(
            "INSERT INTO settings(key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in settings]
        )
        db.executemany(
            "INSERT INTO model_versions(version, checkpoint_path, arch, metrics, parent, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        effort_rows = []
        for image_id, seconds, actions_list, changed, updated in effort:
            merged: dict[str, int] = {}
            for actions in actions_list:
                for tool, count in actions.items():
                    merged[tool] = merged.get(tool, 0) + int(count)
            effort_rows.append((image_id, float(seconds), json.dumps(merged), changed, updated))
        db.executemany(
            "INSERT INTO effort(image_id, active_seconds, actions, changed_fraction, updated_at) VALUES (?, ?, ?, ?, ?)",
            effort_rows,
        )
    return {"images": len(images), "masks": masks, "predictions": predictions, "effort": len(effort),
            "model_versions": len(versions)}  # fmt: skip
