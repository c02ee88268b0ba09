"""N simulated annotators on one team project: save throughput, save latency, and not one mask lost.

Run: `.venv/bin/python -m bench.team [--annotators 20] [--images 200] [--seconds 20] [--json]`
     `.venv/bin/python -m bench.team --open-images 10000`  (time to open a 10,000-image team project)
     `.venv/bin/python -m bench.team --live 50`  (delay of a change heard by LISTEN/NOTIFY)
     `.venv/bin/python -m bench.team --faults 100`  (SIGKILL a client mid-save, N trials: lost/half-written)
     `.venv/bin/python -m bench.team --store-images 200`  (images kept in the server: upload, join from an
      empty folder to the first image, fetch throughput, queue prefetch; real CamVid photos)

Starts a throwaway PostgreSQL server (fsync on, as a real one) in a temp folder, makes a local project
of real-photo crops (480x360), turns it into a team project, then starts N annotator processes, each
with its own login role and connection. Each loops: pick an image, take its lease (a contested one is
counted and another picked), load the mask, edit it (a rectangle of its own class), save (timed), give
the lease back. All N start together once every one has joined (imports and logins are not part of the
run). One operation in ten is a deliberately racy save without a lease on one of a few hot
images, on a version loaded a moment earlier: two members editing the same image, which the server must
refuse as stale whenever someone saved in between.

At the end every save the clients were told succeeded is looked up: present, byte-exact (same PNG
bytes), the version chain unbroken, no version nobody was told about. Printed as JSON: saves/s,
p50/p99 save latency (from the call of `save_mask`, PNG encoding included, until the server has the
version on disk and the client knows it: in the window that is how long a save runs on the background
writer before the image is safe; nobody waits for it), leases contested, stale saves refused, lost, half-written. The reference,
measured in the same run on the same machine: the median save of a local (SQLite) project.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SHAPE = (360, 480)


def _photos(folder: Path, count: int) -> None:
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.rocket()]  # all at least 360x480
    for i in range(count):
        photo = sources[i % len(sources)]
        y, x = (i * 7) % (photo.shape[0] - SHAPE[0] + 1), (i * 5) % (photo.shape[1] - SHAPE[1] + 1)
        crop = np.ascontiguousarray(photo[y : y + SHAPE[0], x : x + SHAPE[1]])
        crop[0, 0] = i % 256  # distinct content even where two crops coincide
        Image.fromarray(crop).save(folder / f"img_{i:05d}.png")


def _mask(base: np.ndarray | None, worker: int, step: int) -> np.ndarray:
    """An edit: a labelled-looking mask (bands of classes) with this member's rectangle painted in."""
    mask = (
        base.copy()
        if base is not None
        else np.repeat((np.arange(SHAPE[0]) // 40).astype(np.uint8), SHAPE[1]).reshape(SHAPE)
    )
    y, x = (step * 37) % (SHAPE[0] - 60), (worker * 53 + step * 11) % (SHAPE[1] - 80)
    mask[y : y + 60, x : x + 80] = (worker + step) % 11
    return mask


def _annotator(
    worker: int, url: str, folder: str, seconds: float, passfile: str, out: mp.Queue, ready: mp.Queue, go: Any
) -> None:
    os.environ["PGPASSFILE"] = passfile
    from segstudio.team.blobs import encode_png
    from segstudio.team.errors import LeaseError, StaleSaveError
    from segstudio.team.project import TeamProject

    rng = random.Random(worker)
    saves: list[tuple[int, str]] = []  # (version id, sha256 of the PNG bytes) the client was told are saved
    latencies: list[float] = []
    cpu: list[float] = []  # this process's CPU seconds within each timed save (the rest is waiting)
    contested = stale = 0
    with TeamProject.join(
        folder, url, state_dir=tempfile.mkdtemp(prefix="bench-team-"), heartbeat=False
    ) as team:
        records = team.images()
        hot = records[:3]
        ready.put(worker)
        go.wait()  # all annotators start together: N of them really work at once
        end = time.monotonic() + seconds
        step = 0
        while time.monotonic() < end:
            step += 1
            if step % 10 == 0:  # racy: no lease, a version loaded a moment ago
                rec = rng.choice(hot)
                base = team.load_mask(rec)
                time.sleep(0.1)  # thinking: another member may save this image meanwhile
                mask = _mask(base, worker, step)
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    team.save_mask(rec, mask)
                except StaleSaveError:
                    stale += 1
                    continue
                except LeaseError:
                    contested += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                saves.append((team.base_version(rec), hashlib.sha256(encode_png(mask)).hexdigest()))
                continue
            rec = rng.choice(records)
            try:
                team.take_lease(rec)
            except LeaseError:
                contested += 1
                continue
            try:
                mask = _mask(team.load_mask(rec), worker, step)
                time.sleep(0.02)  # the edit itself
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    team.save_mask(rec, mask, "in_progress")
                except StaleSaveError:  # a racy save got in between load and save
                    stale += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                saves.append((team.base_version(rec), hashlib.sha256(encode_png(mask)).hexdigest()))
            finally:
                team.release_lease(rec)
    out.put(
        {
            "worker": worker,
            "saves": saves,
            "latencies": latencies,
            "cpu": cpu,
            "contested": contested,
            "stale": stale,
        }
    )


def _local_reference(folder: Path, runs: int = 30) -> float:
    """Median seconds of one `Project.save_mask` on a local project of the same images."""
    from segstudio.core.project import Project

    state = Path(tempfile.mkdtemp(prefix="bench-local-"))
    with Project.open(folder, state_dir=state) as project:
        rec = project.images()[0]
        times = []
        for step in range(runs):
            mask = _mask(None, 0, step)
            t0 = time.perf_counter()
            project.save_mask(rec, mask)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


_OPENER = """
import sys, time
from segstudio.core.project import Project
folder, url = sys.argv[1:3]
started = time.perf_counter()
project = Project.open(folder, db=url)
records = project.images()
opened = time.perf_counter() - started
project.close()
print(opened, len(records))
"""


def _setup(server, work: Path, members: list[str], photos: int) -> tuple[Path, str]:
    """A team project `bench` of `photos` real-photo crops; every member a login role; the lead's URL."""
    from segstudio.core.project import Project
    from segstudio.team.schema import server_sql
    from segstudio.team.transfer import create_team_project

    folder = work / "images"
    folder.mkdir()
    _photos(folder, photos)
    passfile = work / "pgpass"
    passfile.write_text("".join(f"127.0.0.1:{server.port}:*:{m}:pw-{m}\n" for m in ["lead", *members]))
    passfile.chmod(0o600)
    os.environ["PGPASSFILE"] = str(passfile)
    with server.admin() as conn:
        conn.execute(server_sql())
        conn.execute("CREATE ROLE lead LOGIN PASSWORD 'pw-lead' IN ROLE segstudio_lead")
        for m in members:
            conn.execute(f"CREATE ROLE {m} LOGIN PASSWORD 'pw-{m}' IN ROLE segstudio_annotator")
        conn.execute("CREATE DATABASE bench OWNER segstudio_lead")
    Project.open(folder).close()
    create_team_project(folder, server.url("lead", "bench"))
    return folder, server.url("lead", "bench")


def open_bench(count: int, runs: int = 5) -> dict[str, object]:
    """Median time of Project.open(folder, db=URL) + images() on a `count`-image team project, each run a
    fresh process (imports excluded: they are the app's start, the same for a local project). The image
    rows are made by SQL (the files are not needed to open the project); reference in the same run: the
    bare SELECT of the same rows through psycopg."""
    import subprocess

    from segstudio.team.local_server import start_local_server

    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="bench-team-open-"))
    try:
        folder, url = _setup(server, work, ["annotator00"], 2)
        with server.admin("bench") as conn:
            conn.execute(
                "INSERT INTO segstudio.images(id, rel_path, sort_key, size, mtime_ns, width, height, content_hash, "
                "status, split, created_at, updated_at) SELECT 1000 + g, 'many/' || lpad(g::text, 6, '0') || '.png', "
                "'many/' || lpad(g::text, 6, '0') || '.png', 1000, 0, 480, 360, md5(g::text), 'new', "
                "CASE WHEN g %% 5 = 0 THEN 'val' ELSE 'train' END, 0, 0 FROM generate_series(1, %s) g",
                (count - 2,),
            )
            conn.execute("ANALYZE")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1",
               "XDG_CACHE_HOME": str(work / "cache")}  # fmt: skip
        times, listed = [], 0
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", _OPENER, str(folder), url], env=env,
                                 capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
            times.append(float(out[0]))
            listed = int(out[1])
        import psycopg

        bare = []
        for _ in range(runs):
            started = time.perf_counter()
            with psycopg.connect(url) as conn:
                conn.execute("SELECT * FROM segstudio.images ORDER BY sort_key, rel_path").fetchall()
            bare.append(time.perf_counter() - started)
        return {
            "bench": "team_open",
            "images": listed,
            "runs": runs,
            "open_and_list_s_median": round(statistics.median(times), 3),
            "open_and_list_s_max": round(max(times), 3),
            "goal_s": 1.5,
            "reference_bare_select_s_median": round(statistics.median(bare), 3),
            "cpu_cores": os.cpu_count(),
        }
    finally:
        server.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


_KILLED_SAVER = """
import hashlib, sys, numpy as np
from segstudio.team.project import TeamProject
from segstudio.team.blobs import encode_png
folder, url, state, path = sys.argv[1:5]
team = TeamProject.join(folder, url, state_dir=state, heartbeat=False)
rec = team.get(path)
rng = np.random.default_rng()
print("ready", flush=True)
while True:
    team.load_mask(rec)
    mask = rng.integers(0, 12, rec.shape, dtype=np.uint8)
    team.save_mask(rec, mask)
    print(team.base_version(rec), hashlib.sha256(encode_png(mask)).hexdigest(), flush=True)
"""


def fault_bench(trials: int, parallel: int = 4) -> dict[str, object]:
    """SIGKILL a saving client at a random moment, `trials` times (`parallel` clients at once, one image
    each); then every save a client reported must be on the server byte-exact (lost), every stored version
    must decode (half-written), and each image's version chain must be unbroken."""
    import signal
    import subprocess

    from segstudio.team.blobs import decode_png
    from segstudio.team.local_server import start_local_server

    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="bench-team-faults-"))
    rng = random.Random(7)
    try:
        folder, url = _setup(server, work, ["annotator00"], parallel)
        member_url = server.url("annotator00", "bench")
        from segstudio.team.project import TeamProject

        with TeamProject.join(folder, url, state_dir=work / "lead", heartbeat=False) as lead:
            paths = [r.rel_path for r in lead.images()][:parallel]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
        reported: list[tuple[int, str]] = []
        done = 0
        while done < trials:
            batch = min(parallel, trials - done)
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _KILLED_SAVER,
                        str(folder),
                        member_url,
                        str(work / f"c{i}"),
                        paths[i],
                    ],
                    stdout=subprocess.PIPE,
                    env=env,
                )
                for i in range(batch)
            ]
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.05, 0.6))
            for p in procs:
                p.send_signal(signal.SIGKILL)
            for p in procs:
                p.wait()
                assert p.stdout is not None
                for line in p.stdout.read().decode().splitlines():
                    version, digest = line.split()
                    reported.append((int(version), digest))
                p.stdout.close()
            done += batch
        with server.admin("bench") as conn:
            rows = conn.execute(
                "SELECT v.id, v.png, v.parent, v.image_id, i.width, i.height FROM segstudio.mask_versions v "
                "JOIN segstudio.images i ON i.id = v.image_id ORDER BY v.id"
            ).fetchall()
            heads = dict(conn.execute("SELECT id, mask_head FROM segstudio.images").fetchall())
        stored = {int(r[0]): hashlib.sha256(bytes(r[1])).hexdigest() for r in rows}
        half = 0
        for vid, png, _, _, width, height in rows:
            try:
                decode_png(bytes(png), (height, width), f"version {vid}")
            except Exception:
                half += 1
        chains: dict[int, list[tuple[int, int | None]]] = {}
        for vid, _, parent, image, _, _ in rows:
            chains.setdefault(image, []).append((vid, parent))
        broken = sum(
            int([p for _, p in c] != [None, *[v for v, _ in c[:-1]]] or heads[i] != c[-1][0])
            for i, c in chains.items()
        )
        return {
            "bench": "team_faults",
            "trials": trials,
            "clients_killed": trials,
            "saves_reported": len(reported),
            "versions_stored": len(rows),
            "lost_saves": sum(1 for v, d in reported if stored.get(v) != d),
            "half_written": half,
            "broken_version_chains": broken,
        }
    finally:
        server.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def live_bench(trials: int) -> dict[str, object]:
    """Delay from a member's committed change (take a lease) to another client hearing it by
    LISTEN/NOTIFY (team.live); the poll it stands in front of waits 1.5 s on average (3 s period)."""
    import threading

    from segstudio.team.live import ChangeListener
    from segstudio.team.local_server import start_local_server
    from segstudio.team.project import TeamProject

    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="bench-team-live-"))
    try:
        folder, url = _setup(server, work, ["annotator00"], 2)
        heard = threading.Event()
        listener = ChangeListener(url, lambda table, image: heard.set()).start()
        assert listener.listening.wait(30)
        delays = []
        with TeamProject.join(
            folder, server.url("annotator00", "bench"), state_dir=work / "a", heartbeat=False
        ) as member:
            rec = member.images()[0]
            for _ in range(trials):
                heard.clear()
                started = time.perf_counter()
                member.take_lease(rec)  # returns once committed
                heard.wait(10)
                delays.append(time.perf_counter() - started)
                member.release_lease(rec)
                time.sleep(0.02)
        listener.stop()
        delays.sort()
        return {
            "bench": "team_live",
            "trials": trials,
            "notify_delay_ms_p50": round(1000 * statistics.median(delays), 1),
            "notify_delay_ms_p99": round(1000 * delays[min(len(delays) - 1, int(0.99 * len(delays)))], 1),
            "reference_poll_delay_ms_mean": 1500.0,
        }
    finally:
        server.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


_JOINER = """
import sys, time
from segstudio.core.project import Project
folder, url = sys.argv[1:3]
started = time.perf_counter()
project = Project.open(folder, db=url)
rec = project.images()[0]
image = project.load_image(rec)
shown = time.perf_counter() - started
project.close()
print(shown, image.shape[0], image.shape[1])
"""

_WINDOW = """
import os, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings
folder, url = sys.argv[1:3]
window = MainWindow(AppSettings())
window.show()
app.processEvents()
started = time.perf_counter()
window.open_folder(folder, db=url)
while window.session is None or window.session.image is None:
    app.processEvents()
    time.sleep(0.002)
    if time.perf_counter() - started > 120:
        raise SystemExit("the image never showed")
shown = time.perf_counter() - started
window.close()
print(shown)
"""

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_more" / "images"


def store_images_bench(count: int, runs: int = 5) -> dict[str, object]:
    """Images kept in the server, on real CamVid photos (960x720 PNG, ~260 KB): `team create
    --store-images` against a plain `team create` of the same project; a member joining from an empty
    folder until the first image is decoded (fresh process and cache each run, imports excluded; the
    window shows the image right after), against joining with the images in the folder; serial fetch
    throughput against reading and hashing the same files from the local disk; the background prefetch
    of a 20-image queue."""
    import shutil
    import subprocess

    from segstudio.core.hashing import content_hash
    from segstudio.core.project import Project
    from segstudio.team.image_store import PREFETCH_COUNT, ServerImages
    from segstudio.team.local_server import start_local_server
    from segstudio.team.project import TeamProject
    from segstudio.team.schema import server_sql
    from segstudio.team.transfer import create_team_project

    sources = sorted(PHOTOS.glob("*.png"))[:count]
    if not sources:
        raise SystemExit(f"no photos in {PHOTOS}: the shared test data is needed for this bench")
    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="bench-team-images-"))
    try:
        folder = work / "images"
        folder.mkdir()
        for src in sources:
            shutil.copyfile(src, folder / src.name)
        total = sum(p.stat().st_size for p in folder.iterdir())
        passfile = work / "pgpass"
        passfile.write_text("".join(f"127.0.0.1:{server.port}:*:{m}:pw-{m}\n" for m in ("lead", "ann")))
        passfile.chmod(0o600)
        os.environ["PGPASSFILE"] = str(passfile)
        with server.admin() as conn:
            conn.execute(server_sql())
            conn.execute("CREATE ROLE lead LOGIN PASSWORD 'pw-lead' IN ROLE segstudio_lead")
            conn.execute("CREATE ROLE ann LOGIN PASSWORD 'pw-ann' IN ROLE segstudio_annotator")
            conn.execute("CREATE DATABASE stored OWNER segstudio_lead")
            conn.execute("CREATE DATABASE plain OWNER segstudio_lead")
        Project.open(folder).close()
        started = time.perf_counter()
        create_team_project(folder, server.url("lead", "plain"))
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        counts = create_team_project(folder, server.url("lead", "stored"), store_images=True)
        stored_s = time.perf_counter() - started
        url = server.url("ann", "stored")

        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
        joins, shared, windows, windows_shared = [], [], [], []
        for run in range(runs):
            for script, target, where, times in (
                (_JOINER, work / f"empty{run}", url, joins),
                (_JOINER, folder, server.url("ann", "plain"), shared),
                (_WINDOW, work / f"window{run}", url, windows),
                (_WINDOW, folder, server.url("ann", "plain"), windows_shared),
            ):
                out = subprocess.run([sys.executable, "-c", script, str(target), where],
                                     env={**env, "XDG_CACHE_HOME": str(work / f"cache{run}-{len(times)}-{len(script)}"),
                                          "QT_QPA_PLATFORM": "offscreen", "SEGSTUDIO_SETTINGS_DIR": str(work / "settings")},
                                     capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
                times.append(float(out[0]))

        with TeamProject.join(work / "fetch", url, state_dir=work / "fetch-cache", heartbeat=False) as member:
            records = member.images()
        images = ServerImages(url, work / "fetch-cache")
        started = time.perf_counter()
        for rec in records:
            images.file(rec)
        fetch_s = time.perf_counter() - started
        images.close()
        started = time.perf_counter()
        for rec in records:
            content_hash(folder / rec.rel_path)
        disk_s = time.perf_counter() - started
        transfer = {}  # why the cache reads bytea in binary: the same rows as hex text (psycopg's default)
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for binary in (True, False):
                started = time.perf_counter()
                for rec in records:
                    conn.execute("SELECT data FROM segstudio.image_blobs WHERE content_hash = %s",
                                 (rec.content_hash,), binary=binary).fetchone()  # fmt: skip
                transfer[binary] = total / 2**20 / (time.perf_counter() - started)
        from segstudio.core.atomic import atomic_write_bytes
        from segstudio.team.image_store import _write_cached

        writes = {}  # why cache files are not fsynced: the same writes with and without
        sample = (folder / records[0].rel_path).read_bytes()
        for name, write in (("fsync", atomic_write_bytes), ("rename_only", _write_cached)):
            (work / "writes" / name).mkdir(parents=True)
            started = time.perf_counter()
            for i in range(50):
                write(work / "writes" / name / str(i), sample)
            writes[name] = 1000 * (time.perf_counter() - started) / 50

        with TeamProject.join(
            folder, server.url("lead", "stored"), state_dir=work / "l", heartbeat=False
        ) as lead:
            lead.assign(lead.images()[:PREFETCH_COUNT], ["ann"], "hand")
        started = time.perf_counter()
        with TeamProject.join(work / "queue", url, state_dir=work / "queue-cache") as member:
            assert member.start_prefetch() is not None
            member.prefetcher.idle.wait(300)
            prefetch_s = time.perf_counter() - started
            prefetched = len(list((work / "queue-cache" / "images").iterdir()))
        return {
            "bench": "team_store_images",
            "images": len(records),
            "image_mib": round(total / 2**20, 1),
            "create_store_images_s": round(stored_s, 2),
            "reference_create_without_images_s": round(plain_s, 2),
            "upload_mib_per_s": round(total / 2**20 / max(stored_s - plain_s, 1e-9), 1),
            "uploaded_files": counts["image_files"],
            "runs": runs,
            "join_empty_folder_to_first_image_s_median": round(statistics.median(joins), 3),
            "join_empty_folder_to_first_image_s_max": round(max(joins), 3),
            "reference_join_images_in_folder_s_median": round(statistics.median(shared), 3),
            "window_open_to_first_image_shown_empty_folder_s_median": round(statistics.median(windows), 3),
            "reference_window_images_in_folder_s_median": round(statistics.median(windows_shared), 3),
            "fetch_mib_per_s": round(total / 2**20 / fetch_s, 1),
            "fetch_images_per_s": round(len(records) / fetch_s, 1),
            "reference_disk_read_and_hash_mib_per_s": round(total / 2**20 / disk_s, 1),
            "bytea_binary_mib_per_s": round(transfer[True], 1),
            "reference_bytea_hex_text_mib_per_s": round(transfer[False], 1),
            "cache_write_ms_rename_only": round(writes["rename_only"], 2),
            "reference_cache_write_ms_fsync": round(writes["fsync"], 2),
            "prefetch_queue_images": prefetched,
            "prefetch_queue_s": round(prefetch_s, 2),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "cpu_cores": os.cpu_count(),
        }
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="one JSON object (default: indented JSON)")
    parser.add_argument("--open-images", type=int, help="instead: time to open a team project of N images")
    parser.add_argument("--faults", type=int, help="instead: SIGKILL a saving client N times, count losses")
    parser.add_argument("--live", type=int, help="instead: N trials of the LISTEN/NOTIFY delay")
    parser.add_argument(
        "--store-images", type=int, help="instead: images kept in the server, N CamVid photos"
    )
    args = parser.parse_args(argv)
    if args.open_images or args.faults or args.live or args.store_images:
        if args.store_images:
            result = store_images_bench(args.store_images)
        elif args.live:
            result = live_bench(args.live)
        else:
            result = open_bench(args.open_images) if args.open_images else fault_bench(args.faults)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        bad = (
            result.get("lost_saves", 0)
            or result.get("half_written", 0)
            or result.get("broken_version_chains", 0)
        )
        return 1 if bad else 0

    from segstudio.core.project import Project
    from segstudio.team.local_server import start_local_server
    from segstudio.team.schema import server_sql
    from segstudio.team.transfer import create_team_project

    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="bench-team-"))
    try:
        folder = work / "images"
        folder.mkdir()
        _photos(folder, args.images)
        members = [f"annotator{i:02d}" for i in range(args.annotators)]
        passfile = work / "pgpass"
        passfile.write_text("".join(f"127.0.0.1:{server.port}:*:{m}:pw-{m}\n" for m in ["lead", *members]))
        passfile.chmod(0o600)
        os.environ["PGPASSFILE"] = str(passfile)
        with server.admin() as conn:
            conn.execute(server_sql())
            conn.execute("CREATE ROLE lead LOGIN PASSWORD 'pw-lead' IN ROLE segstudio_lead")
            for m in members:
                conn.execute(f"CREATE ROLE {m} LOGIN PASSWORD 'pw-{m}' IN ROLE segstudio_annotator")
            conn.execute("CREATE DATABASE bench OWNER segstudio_lead")
        Project.open(folder).close()
        create_team_project(folder, server.url("lead", "bench"))
        reference = _local_reference(folder)

        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        ready: mp.Queue = ctx.Queue()
        go = ctx.Event()
        procs = [
            ctx.Process(
                target=_annotator,
                args=(i, server.url(m, "bench"), str(folder), args.seconds, str(passfile), out, ready, go),
            )
            for i, m in enumerate(members)
        ]
        for p in procs:
            p.start()
        for _ in procs:  # every annotator joined (imports and login are not part of the run)
            ready.get(timeout=300)
        load_before = os.getloadavg()[0]
        go.set()
        started = time.monotonic()
        results = []
        while len(results) < len(procs):
            try:
                results.append(out.get(timeout=5))
            except Exception:  # queue.Empty: fine while workers run; a dead one is a failed benchmark
                if time.monotonic() - started > args.seconds + 120 or any(
                    p.exitcode not in (None, 0) for p in procs
                ):
                    raise SystemExit("an annotator process failed; see its traceback above") from None
        wall = time.monotonic() - started
        load_after = os.getloadavg()[0]
        for p in procs:
            p.join()

        saves = [s for r in results for s in r["saves"]]
        latencies = sorted(t for r in results for t in r["latencies"])
        with server.admin("bench") as conn:
            stored = {
                int(i): (hashlib.sha256(bytes(png)).hexdigest() if png is not None else None, parent, image)
                for i, png, parent, image in conn.execute(
                    "SELECT id, png, parent, image_id FROM segstudio.mask_versions"
                )
            }
            heads = dict(conn.execute("SELECT id, mask_head FROM segstudio.images").fetchall())
        lost = sum(1 for version, digest in saves if stored.get(version, (None,))[0] != digest)
        phantom = len(stored) - len(saves)  # the local project had no masks: every version is a bench save
        by_image: dict[int, list[int]] = {}
        for vid, (_, _, image) in stored.items():
            by_image.setdefault(image, []).append(vid)
        broken = 0
        for image, ids in by_image.items():
            ids.sort()
            chain = [stored[v][1] for v in ids]
            broken += int(chain != [None, *ids[:-1]] or heads[image] != ids[-1])
        n = len(latencies)
        report = {
            "bench": "team",
            "annotators": args.annotators,
            "images": args.images,
            "seconds": round(wall, 1),
            "cpu_cores": os.cpu_count(),
            "saves": len(saves),
            "saves_per_s": round(len(saves) / args.seconds, 1),
            "save_ms_p50": round(1000 * statistics.median(latencies), 1) if n else None,
            "save_ms_p99": round(1000 * latencies[min(n - 1, int(0.99 * n))], 1) if n else None,
            "save_client_cpu_ms_p50": round(1000 * statistics.median(t for r in results for t in r["cpu"]), 2)
            if n
            else None,
            "leases_contested": sum(r["contested"] for r in results),
            "stale_saves_refused": sum(r["stale"] for r in results),
            "lost_saves": lost,
            "versions_nobody_was_told_about": phantom,
            "broken_version_chains": broken,
            "reference_local_save_ms_p50": round(1000 * reference, 1),
            "load_average_1min_start_end": [round(load_before, 1), round(load_after, 1)],
        }
        print(json.dumps(report) if args.json else json.dumps(report, indent=2))
        return 0 if lost == 0 and phantom == 0 and broken == 0 else 1
    finally:
        server.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
