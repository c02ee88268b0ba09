"""Team-project features in a REAL window (X server, not offscreen), for a person to look at:
`python packaging/screenshot_team.py /tmp/teamshots` (needs Xvfb, xdotool, ImageMagick's `import` and the
PostgreSQL server binaries; run niced on a shared machine).

Starts a throwaway PostgreSQL server (segstudio.team.local_server), makes a team project of six CamVid
photos (/work/shared/testdata/camvid_sample) with the images kept in the server, members lena (lead),
alice and bob (annotators) and rita (reviewer); sends two photos to consensus, where alice saves the
ground truth and bob a shifted, partly relabelled copy; alice holds a lease on a third photo. Then it runs
the real app (`python -m segstudio FOLDER --db URL`, passwords from a pgpass file as the docs say) on
`Xvfb :91`, clicks it with xdotool and saves screenshots of the whole screen with `import -window root`:

1. rita (reviewer) on the lead's folder: browser marks, then Team -> Compare annotations..., a
   per-class choice (road from bob), then Resolve as previewed: the merged mask in the window.
2. bob (annotator) joins from an EMPTY folder: thumbnails and the first image, fetched from the server;
   then, with the server stopped, a brush dab and Ctrl+S (the save is queued: "not yet on the server"),
   and the server started again (the queued save lands).
3. lena (lead): Compare on the second consensus photo with the lead's Keep-only buttons, Keep only A;
   then a right-click on the last photo, Remove from project..., and its confirmation.

Coordinates come from the screenshots of this layout (window at 0,0, 1440x960); a changed layout means
new coordinates. The screenshots are not part of the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_sample"
if not DATA.is_dir():
    DATA = Path("/work/shared/testdata/camvid_sample")
DISPLAY = ":91"
MEMBERS = {"lena": "segstudio_lead", "alice": "segstudio_annotator", "bob": "segstudio_annotator",
           "rita": "segstudio_reviewer"}  # fmt: skip
PHOTOS = 6
CONSENSUS = 2


def _bob_of(truth: np.ndarray) -> np.ndarray:
    """Bob's annotation: the ground truth 6 px to the right, and the middle third of the road as pavement
    (a disagreement a reviewer should see at a glance)."""
    out = truth.copy()
    out[:, 6:] = truth[:, :-6]
    h, w = out.shape
    band = out[h // 2 :, w // 3 : 2 * w // 3]
    band[band == 3] = 4  # camvid: 3 road, 4 pavement
    return out


def setup(work: Path):
    """Server, team project, consensus and a lease; returns (server, lead folder, URL of a member)."""
    from PIL import Image

    from segstudio.core.project import Project, Status
    from segstudio.core.schemes import LabelScheme
    from segstudio.team.local_server import start_local_server
    from segstudio.team.project import TeamProject
    from segstudio.team.schema import server_sql
    from segstudio.team.transfer import create_team_project

    server = start_local_server()
    folder = work / "streets"
    folder.mkdir()
    for path in sorted((DATA / "images").glob("*.png"))[:PHOTOS]:
        shutil.copy2(path, folder)
    passfile = work / "pgpass"
    passfile.write_text("".join(f"127.0.0.1:{server.port}:*:{m}:pw-{m}\n" for m in MEMBERS))
    passfile.chmod(0o600)
    os.environ["PGPASSFILE"] = str(passfile)
    os.environ["XDG_CACHE_HOME"] = str(work / "cache-setup")
    with server.admin() as conn:
        conn.execute(server_sql())
        for member, group in MEMBERS.items():
            conn.execute(f"CREATE ROLE {member} LOGIN PASSWORD 'pw-{member}' IN ROLE {group}")
        conn.execute("CREATE DATABASE streets OWNER segstudio_lead")
    url = lambda member: server.url(member, "streets")  # noqa: E731
    Project.open(folder, state_dir=work / "local", scheme=LabelScheme.load(DATA / "scheme.json")).close()
    create_team_project(folder, url("lena"), work / "local", store_images=True)

    def join(member: str, heartbeat: bool = False) -> TeamProject:
        return TeamProject.join(folder, url(member), state_dir=work / f"state-{member}", heartbeat=heartbeat)

    with join("lena") as lena:
        records = lena.images()
        lena.assign(records, ["alice", "bob"], "round-robin")
        lena.add_consensus(records[:CONSENSUS], ["alice", "bob"], 1.0)
    with join("alice") as alice, join("bob") as bob:
        for member, project in (("alice", alice), ("bob", bob)):
            for rec in project.images()[:CONSENSUS]:
                truth = np.array(Image.open(DATA / "masks" / rec.rel_path))
                found = project.consensus_of(rec)
                project.load_mask(rec)
                project.save_mask(rec, truth if member == "alice" else _bob_of(truth), Status.DONE)
                assert found.branch_of(member) is not None
    holder = join("alice", heartbeat=True)  # alice keeps editing the third photo while the shots are taken
    third = holder.images()[CONSENSUS]
    holder.take_lease(third)
    return server, folder, url, holder


class Screen:
    """Xvfb, the app processes on it, xdotool clicks and whole-screen shots."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1440x960x24", "-nolisten", "tcp"])
        os.environ["DISPLAY"] = DISPLAY
        time.sleep(1.5)
        self.apps: list[subprocess.Popen] = []

    def start_app(self, folder: Path, url: str, work: Path, who: str) -> subprocess.Popen:
        env = dict(os.environ, QT_QPA_PLATFORM="xcb", XDG_CACHE_HOME=str(work / f"cache-{who}"),
                   SEGSTUDIO_SETTINGS_DIR=str(work / f"settings-{who}"), OMP_NUM_THREADS="1")  # fmt: skip
        env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
        log = open(work / f"app-{who}.log", "w")  # noqa: SIM115
        app = subprocess.Popen([sys.executable, "-m", "segstudio", str(folder), "--db", url], env=env,
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.apps.append(app)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "SegStudio"],
                                   capture_output=True, text=True)  # fmt: skip
            if found.stdout.strip():
                wid = found.stdout.split()[0]
                subprocess.run(["xdotool", "windowmove", wid, "0", "0"], check=False)
                subprocess.run(["xdotool", "windowsize", wid, "1440", "960"], check=False)
                time.sleep(6)  # image list, thumbnails and the first image arrive
                return app
            time.sleep(0.5)
        raise SystemExit(f"the app window did not appear; see {work / f'app-{who}.log'}")

    def stop_app(self, app: subprocess.Popen) -> None:
        """Quit as a user does (Ctrl+Q over the status bar: leases are released), else terminate."""
        subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", "SegStudio", "windowfocus"], check=False
        )
        subprocess.run(["xdotool", "mousemove", *STATUS_BAR, "key", "ctrl+q"], check=False)
        try:
            app.wait(20)
            print("the app quit (Ctrl+Q)", flush=True)
            return
        except subprocess.TimeoutExpired:
            print("Ctrl+Q did not quit the app: terminated", flush=True)
        app.terminate()
        try:
            app.wait(15)
        except subprocess.TimeoutExpired:
            app.kill()

    def click(self, x: int, y: int, wait: float = 1.0, button: int = 1) -> None:
        subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", str(button)], check=True)
        time.sleep(wait)

    def key(self, *keys: str, wait: float = 1.0) -> None:
        subprocess.run(["xdotool", "key", *keys], check=True)
        time.sleep(wait)

    def shot(self, name: str) -> Path:
        path = self.out / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        print(f"saved {path}", flush=True)
        return path

    def close(self) -> None:
        for app in self.apps:
            if app.poll() is None:
                self.stop_app(app)
        self.xvfb.terminate()
        self.xvfb.wait(10)


def main(out_dir: str, steps: str = "all") -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="teamshots-"))
    server = holder = screen = None
    try:
        server, folder, url, holder = setup(work)
        screen = Screen(out)
        if steps in ("all", "review"):
            rita = screen.start_app(folder, url("rita"), work, "rita")
            screen.shot("01_reviewer_browser")
            screen.click(*ROW_CONSENSUS_1, wait=3)  # the first consensus photo in the browser
            screen.click(*MENU_TEAM)
            screen.shot("02_team_menu")
            screen.click(*ITEM_COMPARE, wait=5)
            screen.shot("03_compare_dialog")
            screen.click(*RADIO_ROAD_B, wait=3)  # trust bob for road: the preview changes
            screen.shot("03b_road_from_b")
            screen.click(*BUTTON_MERGE, wait=5)
            screen.shot("04_after_merge")
            screen.stop_app(rita)
        if steps in ("all", "lead"):
            lena = screen.start_app(folder, url("lena"), work, "lena")
            screen.click(*ROW_CONSENSUS_2, wait=3)  # the second consensus photo (the first is resolved)
            screen.click(*MENU_TEAM)
            screen.click(*ITEM_COMPARE, wait=5)
            screen.shot("08_lead_compare_keep_buttons")
            screen.click(*BUTTON_KEEP_A, wait=5)
            screen.shot("09_after_keep_only_a")
            screen.click(*ROW_LAST, wait=3, button=3)  # right-click the last photo: the lead's menu
            screen.shot("10_lead_context_menu")
            screen.click(*ITEM_REMOVE, wait=3)
            screen.shot("11_remove_confirmation")
            screen.click(*BUTTON_YES, wait=4)  # Cancel is the default: Return would keep the image
            screen.shot("12_after_remove")
            screen.stop_app(lena)
        if steps in ("all", "join"):
            empty = work / "bob-empty"
            empty.mkdir()
            bob = screen.start_app(empty, url("bob"), work, "bob")
            time.sleep(4)
            screen.shot("05_join_from_empty_folder")
            screen.click(*ROW_BOBS_OWN, wait=4)  # an ordinary image of bob's queue
            server.stop()
            time.sleep(4)  # a poll or two finds the server away
            screen.click(*CANVAS_SPOT)  # one brush dab, saved while the server is away
            screen.key("ctrl+s", wait=6)  # the server is away: the save is queued
            screen.shot("06_save_queued_server_down")
            server.start()
            time.sleep(12)  # the queue is retried in the background
            screen.shot("07_save_landed_server_back")
            screen.stop_app(bob)
    finally:
        if screen is not None:
            screen.close()
        if holder is not None:
            holder.close()
        if server is not None:
            server.remove()
        for log in work.glob("app-*.log"):
            shutil.copy2(log, out / log.name)
        shutil.rmtree(work, ignore_errors=True)
    return 0


# Screen coordinates read from the screenshots (window at 0,0, 1440x960).
ROW_CONSENSUS_1 = (160, 220)
ROW_CONSENSUS_2 = (160, 300)
ROW_LAST = (160, 628)
MENU_TEAM = (275, 8)
ITEM_COMPARE = (354, 73)
BUTTON_MERGE = (447, 738)
RADIO_ROAD_B = (1105, 494)
BUTTON_KEEP_A = (354, 752)
ITEM_REMOVE = (230, 640)
BUTTON_YES = (822, 494)
STATUS_BAR = ("700", "945")
CANVAS_SPOT = (700, 500)
ROW_BOBS_OWN = (160, 464)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/teamshots", *sys.argv[2:3]))
