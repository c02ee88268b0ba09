"""How long the window's thread is held when a member opens a team image that is not cached yet.

Run: `.venv/bin/python -m bench.team_fetch_open [--photos 80] [--runs 8] [--delay-ms 0] [--json]`

Starts a throwaway PostgreSQL server (fsync on), stores real CamVid photos in it (`--store-images`), and
opens the window (offscreen Qt, in this process) as a member on an empty folder. Each run opens a photo
not yet on this machine the way a click in the browser does (`MainWindow.open_image`), while a 5 ms
QTimer ticks on the window's thread, and waits until the photo is shown. Measured per open: how long
the call held the window's thread, the longest gap between two ticks from the click until the photo is
shown (what the user feels as a frozen window), and click-to-shown. The reference, in the same run on
the same server and window: the same opens fetched on the window's thread, as before this change
(`needs_fetch` answering False, so the session takes its old synchronous path); the two alternate,
each on photos of its own. `--delay-ms` adds that much to every download (a slower link than this
machine's loopback), the same for both.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_more" / "images"


def _server_with_photos(work: Path, count: int) -> tuple[Any, str, int]:
    from segstudio.core.project import Project
    from segstudio.team.local_server import start_local_server
    from segstudio.team.schema import server_sql
    from segstudio.team.transfer import create_team_project

    sources = sorted(PHOTOS.glob("*.png"))[:count]
    if len(sources) < count:
        raise SystemExit(f"need {count} photos in {PHOTOS} (the shared test data) for this bench")
    server = start_local_server(fsync=True)
    folder = work / "lead"
    folder.mkdir()
    for src in sources:
        shutil.copyfile(src, folder / src.name)
    passfile = work / "pgpass"
    passfile.write_text("".join(f"127.0.0.1:{server.port}:*:{m}:pw-{m}\n" for m in ("lead", "ann")))
    passfile.chmod(0o600)
    os.environ["PGPASSFILE"] = str(passfile)
    with server.admin() as conn:
        conn.execute(server_sql())
        conn.execute("CREATE ROLE lead LOGIN PASSWORD 'pw-lead' IN ROLE segstudio_lead")
        conn.execute("CREATE ROLE ann LOGIN PASSWORD 'pw-ann' IN ROLE segstudio_annotator")
        conn.execute("CREATE DATABASE stored OWNER segstudio_lead")
    Project.open(folder).close()
    create_team_project(folder, server.url("lead", "stored"), store_images=True)
    return server, server.url("ann", "stored"), len(sources)


def _open_once(app: Any, window: Any, rel_path: str) -> dict[str, float]:
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    for _ in range(5):  # the timer is running before the click
        app.processEvents()
        time.sleep(0.005)
    clicked = time.perf_counter()
    window.open_image(rel_path)
    returned = time.perf_counter()
    session = window.session
    while not (session.record.rel_path == rel_path and session.document is not None):
        app.processEvents()
        time.sleep(0.001)
        if time.perf_counter() - clicked > 60:
            raise SystemExit(f"{rel_path} never showed")
    shown = time.perf_counter()
    app.processEvents()
    timer.stop()
    marks = [clicked] + [t for t in ticks if t > clicked] + [shown]
    return {
        "held_ms": 1000 * (returned - clicked),
        "max_gap_ms": 1000 * max(b - a for a, b in itertools.pairwise(marks)),
        "shown_ms": 1000 * (shown - clicked),
    }


def run(photos: int, runs: int, delay_ms: float) -> dict[str, object]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-open-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    os.environ["SEGSTUDIO_SETTINGS_DIR"] = str(work / "settings")
    server, url, count = _server_with_photos(work, photos)
    try:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance() or QApplication([])
        from segstudio.gui.main_window import MainWindow
        from segstudio.gui.settings import AppSettings
        from segstudio.team import image_store

        if delay_ms:
            real = image_store.ServerImages._download

            def slower(self: Any, rec: Any) -> bytes:
                time.sleep(delay_ms / 1000)
                return real(self, rec)

            image_store.ServerImages._download = slower  # type: ignore[method-assign]
        window = MainWindow(AppSettings())
        window.settings.auto_predict = False  # only the opening is measured
        window.show()
        app.processEvents()
        window.open_folder(str(work / "member"), db=url)
        while window.session is None or window.session.document is None:
            app.processEvents()
            time.sleep(0.002)
        project = window.project
        # far from what is fetched already: from the end of the list (thumbnails are fetched for the rows
        # in view, at the top), every third photo (each open prefetches its two neighbours); no queue is
        # assigned, so the queue prefetcher fetches nothing
        paths = [r.rel_path for r in project.images()][::-1][::3]
        results: dict[str, list[dict[str, float]]] = {"background": [], "gui_thread": []}
        used = 0
        for index in range(runs * 2):
            mode = "background" if index % 2 == 0 else "gui_thread"
            while used < len(paths) and not project.needs_fetch(project.get(paths[used])):
                used += 1  # cached meanwhile (a thumbnail): not what is measured
            if used >= len(paths):
                break
            target = paths[used]
            used += 1
            if mode == "gui_thread":
                project.needs_fetch = lambda rec: False  # type: ignore[method-assign]
            try:
                results[mode].append(_open_once(app, window, target))
            finally:
                project.__dict__.pop("needs_fetch", None)
            window.session.cache._jobs.wait_idle(60)  # the neighbours' prefetch ends before the next open
        window.close()

        def med(mode: str, key: str) -> float | None:
            values = [r[key] for r in results[mode]]
            return round(statistics.median(values), 1) if values else None

        return {
            "bench": "team_fetch_open",
            "photos_in_server": count,
            "delay_ms_per_download": delay_ms,
            "opens_each": min(len(results["background"]), len(results["gui_thread"])),
            "gui_thread_held_ms_median": med("background", "held_ms"),
            "reference_fetch_on_gui_thread_held_ms_median": med("gui_thread", "held_ms"),
            "longest_frozen_ms_median": med("background", "max_gap_ms"),
            "reference_longest_frozen_ms_median": med("gui_thread", "max_gap_ms"),
            "click_to_shown_ms_median": med("background", "shown_ms"),
            "reference_click_to_shown_ms_median": med("gui_thread", "shown_ms"),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "cpu_cores": os.cpu_count(),
        }
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=80)
    parser.add_argument("--runs", type=int, default=8, help="opens of each kind")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every download")
    parser.add_argument("--json", action="store_true", help="one JSON object (default: indented JSON)")
    args = parser.parse_args(argv)
    result = run(args.photos, args.runs, args.delay_ms)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
