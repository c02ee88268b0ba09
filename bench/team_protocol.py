"""Server-side save latency of the team protocol, without the app's CPU: N raw psycopg clients.

Run: `.venv/bin/python -m bench.team_protocol 20 old,new,two,old,new,two`

Each client (its own login role) loops as bench.team's annotators do: take a lease, read the head, a
20 ms "edit", save a pre-encoded PNG (timed), release. Modes: `old` (schema 3's way: the trigger NOTIFYs
inside the save, INSERT then a row read: two round trips), `two` (the client NOTIFYs after the commit,
still two round trips), `new` (what TeamProject does now: `write; COMMIT; NOTIFY + read` in one round
trip). Same throwaway server (fsync on) for all modes; prints one JSON line per mode run.
"""

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path


def worker(mode, url, passfile, ids, seconds, png, go, out):
    os.environ["PGPASSFILE"] = passfile
    import random

    import psycopg
    from psycopg import ClientCursor

    rng = random.Random(os.getpid())
    opts = {"options": "-c segstudio.client_notifies=on"} if mode != "old" else {}
    conn = psycopg.connect(url, autocommit=True, **opts)
    cols = "id, rel_path, status, split, updated_at"
    lat = []
    go.wait()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        i = rng.choice(ids)
        if mode == "old":
            r = conn.execute(
                "INSERT INTO segstudio.leases(image_id, holder, expires_at) VALUES (%s, current_user, now() + interval '3 min') ON CONFLICT (image_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE segstudio.leases.holder = current_user OR segstudio.leases.expires_at < now() RETURNING holder",
                (i,),
            ).fetchone()
        else:
            with ClientCursor(conn) as cur:
                cur.execute(
                    "INSERT INTO segstudio.leases(image_id, holder, expires_at) VALUES (%s, current_user, now() + interval '3 min') ON CONFLICT (image_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE segstudio.leases.holder = current_user OR segstudio.leases.expires_at < now() RETURNING holder; COMMIT; SELECT pg_notify('segstudio_changes', 'leases:' || %s)",
                    (i, i),
                )
                r = cur.fetchone()
        if r is None:
            continue
        head = conn.execute("SELECT mask_head FROM segstudio.images WHERE id=%s", (i,)).fetchone()[0]
        time.sleep(0.02)
        t0 = time.perf_counter()
        try:
            if mode == "old":
                conn.execute(
                    "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s,%s,%s,'in_progress') RETURNING id",
                    (i, head, png),
                ).fetchone()
                conn.execute(f"SELECT {cols} FROM segstudio.images WHERE id=%s", (i,)).fetchone()
            elif mode == "two":
                conn.execute(
                    "INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s,%s,%s,'in_progress') RETURNING id",
                    (i, head, png),
                ).fetchone()
                conn.execute(
                    f"SELECT pg_notify('segstudio_changes', 'mask_versions:' || %s), {cols} FROM segstudio.images WHERE id=%s",
                    (i, i),
                ).fetchone()
            else:
                with ClientCursor(conn) as cur:
                    cur.execute(
                        f"INSERT INTO segstudio.mask_versions(image_id, parent, png, status) VALUES (%s,%s,%s,'in_progress') RETURNING id; COMMIT; SELECT pg_notify('segstudio_changes', 'mask_versions:' || %s), {cols} FROM segstudio.images WHERE id=%s",
                        (i, head, png, i, i),
                    )
            lat.append(time.perf_counter() - t0)
        except psycopg.Error:
            pass
        if mode == "old":
            conn.execute("DELETE FROM segstudio.leases WHERE image_id=%s AND holder=current_user", (i,))
        else:
            with ClientCursor(conn) as cur:
                cur.execute(
                    "DELETE FROM segstudio.leases WHERE image_id=%s AND holder=current_user; COMMIT; SELECT pg_notify('segstudio_changes', 'leases:' || %s)",
                    (i, i),
                )
    out.put(lat)


def main():
    from bench.team import _mask, _setup
    from segstudio.team.blobs import encode_png
    from segstudio.team.local_server import start_local_server

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    modes = (sys.argv[2] if len(sys.argv) > 2 else "old,new,two,old,new,two").split(",")
    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp())
    members = [f"annotator{i:02d}" for i in range(n)]
    try:
        _setup(server, work, members, 60)
        with server.admin("bench") as c:
            ids = [r[0] for r in c.execute("SELECT id FROM segstudio.images")]
        png = encode_png(_mask(None, 0, 0))
        for k, mode in enumerate(modes):
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            go = ctx.Event()
            ps = [
                ctx.Process(
                    target=worker,
                    args=(mode, server.url(m, "bench"), str(work / "pgpass"), ids, 10, png, go, q),
                )
                for m in members
            ]
            for p in ps:
                p.start()
            time.sleep(8)
            l0 = os.getloadavg()[0]
            go.set()
            lats = sorted(x for _ in ps for x in q.get())
            for p in ps:
                p.join()
            print(
                json.dumps(
                    {
                        "mode": mode,
                        "run": k,
                        "saves_10s": len(lats),
                        "p50_ms": round(1000 * lats[len(lats) // 2], 1),
                        "p99_ms": round(1000 * lats[int(0.99 * len(lats))], 1),
                        "load_start_end": [round(l0, 1), round(os.getloadavg()[0], 1)],
                    }
                ),
                flush=True,
            )
    finally:
        server.remove()


if __name__ == "__main__":
    main()
