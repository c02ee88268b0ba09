"""N simulated annotators on one team project: save throughput, save latency, and not one mask lost.

Run: `.venv/bin/python -m bench.team [--annotators 20] [--images 200] [--seconds 20] [--json]`

Starts a throwaway PostgreSQL server (fsync on, as a real one) in a temp folder, makes a local project
of real-photo crops (480x360), turns it into a team project, then starts N annotator processes, each
with its own login role and connection. Each loops: pick an image, take its lease (a contested one is
counted and another picked), load the mask, edit it (a rectangle of its own class), save (timed), give
the lease back. One operation in ten is a deliberately racy save without a lease on one of a few hot
images, on a version loaded a moment earlier: two members editing the same image, which the server must
refuse as stale whenever someone saved in between.

At the end every save the clients were told succeeded is looked up: present, byte-exact (same PNG
bytes), the version chain unbroken, no version nobody was told about. Printed as JSON: saves/s,
p50/p99 save latency, leases contested, stale saves refused, lost, half-written. The reference,
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


def _annotator(worker: int, url: str, folder: str, seconds: float, passfile: str, out: mp.Queue) -> None:
    os.environ["PGPASSFILE"] = passfile
    from segstudio.team.blobs import encode_png
    from segstudio.team.errors import LeaseError, StaleSaveError
    from segstudio.team.project import TeamProject

    rng = random.Random(worker)
    saves: list[tuple[int, str]] = []  # (version id, sha256 of the PNG bytes) the client was told are saved
    latencies: list[float] = []
    contested = stale = 0
    with TeamProject.join(
        folder, url, state_dir=tempfile.mkdtemp(prefix="bench-team-"), heartbeat=False
    ) as team:
        records = team.images()
        hot = records[:3]
        end = time.monotonic() + seconds
        step = 0
        while time.monotonic() < end:
            step += 1
            if step % 10 == 0:  # racy: no lease, a version loaded a moment ago
                rec = rng.choice(hot)
                base = team.load_mask(rec)
                time.sleep(0.1)  # thinking: another member may save this image meanwhile
                mask = _mask(base, worker, step)
                t0 = time.perf_counter()
                try:
                    team.save_mask(rec, mask)
                except StaleSaveError:
                    stale += 1
                    continue
                except LeaseError:
                    contested += 1
                    continue
                latencies.append(time.perf_counter() - t0)
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
                t0 = time.perf_counter()
                try:
                    team.save_mask(rec, mask, "in_progress")
                except StaleSaveError:  # a racy save got in between load and save
                    stale += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                saves.append((team.base_version(rec), hashlib.sha256(encode_png(mask)).hexdigest()))
            finally:
                team.release_lease(rec)
    out.put(
        {"worker": worker, "saves": saves, "latencies": latencies, "contested": contested, "stale": stale}
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="one JSON object (default: indented JSON)")
    args = parser.parse_args(argv)

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
        procs = [
            ctx.Process(
                target=_annotator,
                args=(i, server.url(m, "bench"), str(folder), args.seconds, str(passfile), out),
            )
            for i, m in enumerate(members)
        ]
        started = time.monotonic()
        for p in procs:
            p.start()
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
            "leases_contested": sum(r["contested"] for r in results),
            "stale_saves_refused": sum(r["stale"] for r in results),
            "lost_saves": lost,
            "versions_nobody_was_told_about": phantom,
            "broken_version_chains": broken,
            "reference_local_save_ms_p50": round(1000 * reference, 1),
        }
        print(json.dumps(report) if args.json else json.dumps(report, indent=2))
        return 0 if lost == 0 and phantom == 0 and broken == 0 else 1
    finally:
        server.remove()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
