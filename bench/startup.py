"""Start-up benchmark: process start -> window on screen with the first photo of a folder, vs labelme.

Run under an X server (Xvfb is fine):
`xvfb-run -a .venv/bin/python -m bench.startup [--runs 7] [--labelme /tmp/labelme-venv/bin/labelme]`

Both programs are measured the same way, from outside: the clock starts just before the process is
spawned and stops when a top-level X window is viewable *and* its title names one of the folder's
images (both apps put the open file in the title only after loading it), polled every 5 ms through
Xlib (ctypes, in this process; no per-poll subprocess). Runs alternate SegStudio / labelme so load
from other jobs on a shared machine hits both; each run gets a fresh copy of the photos in a temp
folder (so SegStudio measures a *first* open, project index included, not a reopen) and a fresh
HOME/config so neither finds state from an earlier run. SegStudio's modules are byte-compiled first, as
an installed copy is (labelme's venv is). labelme (GPL) is only run as an external program; it is
skipped with a message when it is not installed.

Prints JSON lines: one per run, then medians for both apps and the ratio (goal: <= 0.6). Each run also
records the CPU seconds the process had used when its window appeared (`cpu_s`, from /proc): on a
machine shared with other jobs that figure moves far less than the wall-clock one.

Then the event-loop stall right after the photo appears (`--stall-runs`, 0 skips it), in SegStudio
only, measured inside a fresh `segstudio` process started the normal way (run_app on a fresh copy):
a 5 ms precise QTimer starts when the first photo is handed to the canvas; from the moment the canvas
starts painting it (`first_paint_ms` after the hand-over), the longest gap between two ticks in the
next 3 s is the longest time the window could not react to input. Also reported: when the smart tools became
ready (from the photo handed to the canvas). Modes, interleaved per run: `worker` (as shipped: the click
engines' scikit-image/SciPy import and the SLIC precomputation on a worker thread), `gui_import`
(reference: the same with that import on the GUI thread, as before), `no_engines` (reference: the
window with the smart-tool preparation switched off: the stall the rest of the app causes).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_sample" / "images"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


class _Attrs(ctypes.Structure):
    """XWindowAttributes (Xlib.h); only map_state is read."""

    _fields_ = [
        ("x", ctypes.c_int),
        ("y", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("border_width", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p),
        ("root", ctypes.c_ulong),
        ("class_", ctypes.c_int),
        ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int),
        ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong),
        ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong),
        ("map_installed", ctypes.c_int),
        ("map_state", ctypes.c_int),
        ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int),
        ("screen", ctypes.c_void_p),
    ]


class XWatch:
    """Lists viewable top-level windows and their titles (_NET_WM_NAME, else WM_NAME) via libX11."""

    IS_VIEWABLE = 2

    def __init__(self) -> None:
        name = ctypes.util.find_library("X11")
        if not name:
            raise RuntimeError("libX11 not found")
        x = self.x = ctypes.CDLL(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XQueryTree.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
            ctypes.POINTER(ctypes.c_uint),
        ]
        x.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_Attrs)]
        x.XGetWindowProperty.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.c_int,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_void_p),
        ]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XSetErrorHandler.restype = ctypes.c_void_p
        # A window may vanish between XQueryTree and the next request: ignore BadWindow instead of exiting.
        self._handler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda d, e: 0)
        x.XSetErrorHandler(self._handler)
        self.dpy = x.XOpenDisplay(None)
        if not self.dpy:
            raise RuntimeError("cannot open the X display (run under xvfb-run -a)")
        self.root = x.XDefaultRootWindow(self.dpy)
        self.atoms = [x.XInternAtom(self.dpy, b"_NET_WM_NAME", 0), 39]  # 39 = XA_WM_NAME

    def _title(self, win: int) -> str:
        for atom in self.atoms:
            typ, fmt, n, after = ctypes.c_ulong(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong()
            data = ctypes.c_void_p()
            ok = self.x.XGetWindowProperty(
                self.dpy,
                win,
                atom,
                0,
                4096,
                0,
                0,
                ctypes.byref(typ),
                ctypes.byref(fmt),
                ctypes.byref(n),
                ctypes.byref(after),
                ctypes.byref(data),
            )
            if ok == 0 and data.value:
                raw = ctypes.string_at(data.value, n.value) if fmt.value == 8 else b""
                self.x.XFree(data)
                if raw:
                    return raw.decode("utf-8", "replace")
        return ""

    def viewable_titles(self) -> list[str]:
        root_ret, parent_ret = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not self.x.XQueryTree(
            self.dpy,
            self.root,
            ctypes.byref(root_ret),
            ctypes.byref(parent_ret),
            ctypes.byref(children),
            ctypes.byref(count),
        ):
            return []
        wins = [children[i] for i in range(count.value)]
        if children:
            self.x.XFree(children)
        titles = []
        attrs = _Attrs()
        for win in wins:  # no window manager under Xvfb: app windows are children of the root
            if (
                self.x.XGetWindowAttributes(self.dpy, win, ctypes.byref(attrs))
                and attrs.map_state == self.IS_VIEWABLE
            ):
                title = self._title(win)
                if title:
                    titles.append(title)
        self.x.XSync(self.dpy, 0)
        return titles


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _time_to_window(
    cmd: list[str], env: dict[str, str], names: set[str], watch: XWatch, timeout: float
) -> tuple[float, float | None]:
    """Seconds from spawning `cmd` to a viewable window whose title names one of `names`, and the CPU
    seconds the process had used by then."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - t0 < timeout:
            if any(any(n in t for n in names) for t in watch.viewable_titles()):
                return time.perf_counter() - t0, _cpu_seconds(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.005)
        raise RuntimeError(f"{cmd[0]}: no window with an image in its title after {timeout} s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _fresh_copy(app: str, photos: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A temp copy of the photos and an environment with an empty HOME/config, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"startup-{app}-") as tmp:
        folder = Path(tmp) / "photos"
        shutil.copytree(photos, folder)
        home = Path(tmp) / "home"
        home.mkdir()
        env = dict(
            os.environ,
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            XDG_CACHE_HOME=str(home / ".cache"),
        )
        env.pop("QT_QPA_PLATFORM", None)  # both draw on the real (X) display
        yield folder, env


def _run_one(
    app: str, cmd_prefix: list[str], photos: Path, watch: XWatch, timeout: float
) -> tuple[float, float | None]:
    with _fresh_copy(app, photos) as (folder, env):
        names = {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        return _time_to_window([*cmd_prefix, str(folder)], env, names, watch, timeout)


STALL_MODES = ("worker", "gui_import", "no_engines")
STALL_SECONDS, TICK_MS = 3.0, 5


def _stall_child(mode: str, folder: str) -> int:
    """In a fresh process: run the app on `folder` and print the tick gaps after the first photo (JSON)."""
    from PySide6.QtCore import QEvent, QObject, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from segstudio.gui import app, main_window, smart_tools

    prepare_later = smart_tools.SmartTools._prepare_later
    if mode == "gui_import":  # the reference: the engines' import on the GUI thread, as before

        def on_gui_thread(self, image, generation):
            smart_tools._engines()
            prepare_later(self, image, generation)

        smart_tools.SmartTools._prepare_later = on_gui_thread
    elif mode == "no_engines":
        smart_tools.SmartTools._prepare_later = lambda self, image, generation: None
    opened = main_window.MainWindow._image_opened
    marks: dict[str, float] = {}  # "opened": photo handed to the canvas; "painted": its first paint began
    ticks: list[float] = []
    result: dict[str, object] = {}

    class PaintSpy(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and "opened" in marks and "painted" not in marks:
                marks["painted"] = time.perf_counter()
            return False

    spy = PaintSpy()

    def watch(window, *args) -> None:
        opened(window, *args)
        if marks:
            return
        marks["opened"] = t0 = time.perf_counter()
        window.canvas.viewport().installEventFilter(spy)
        timer = QTimer(window)
        timer.setTimerType(Qt.TimerType.PreciseTimer)

        def tick() -> None:
            now = time.perf_counter()
            ticks.append(now)
            if "ready_s" not in result and window.tools.smart.engines:
                result["ready_s"] = round(now - t0, 3)
            if now - t0 >= STALL_SECONDS + 0.5 and (
                "ready_s" in result or mode == "no_engines" or now - t0 > 30
            ):
                timer.stop()
                QApplication.instance().quit()

        timer.timeout.connect(tick)
        timer.start(TICK_MS)

    main_window.MainWindow._image_opened = watch
    app.run_app(folder)
    painted = marks.get("painted", marks["opened"])
    # From the start of the photo's paint: the gap to the next tick includes that paint (a few ms) and
    # whatever ran right after it on the GUI thread (the engine import, in the gui_import reference).
    moments = [painted, *[t for t in ticks if painted < t <= painted + STALL_SECONDS]]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(moments)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    result.update(
        max_gap_ms=round(gaps[worst], 1),
        max_gap_at_ms=round((moments[worst] - painted) * 1000),
        gaps_over_50ms=sum(g > 50 for g in gaps),
        ticks=len(gaps),
        first_paint_ms=round((painted - marks["opened"]) * 1000, 1),
        engines_loaded="segstudio.core.interactive.engines" in sys.modules,
    )
    print("STALL " + json.dumps(result), flush=True)
    return 0


def _stall_run(mode: str, photos: Path, timeout: float) -> dict[str, object]:
    with _fresh_copy("stall", photos) as (folder, env):
        out = subprocess.run(
            [sys.executable, "-m", "bench.startup", "--stall-child", mode, str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=Path(__file__).resolve().parents[1],
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("STALL ")), None)
        if line is None:
            raise RuntimeError(f"stall child ({mode}) failed: {out.stderr[-2000:]}")
        return json.loads(line[len("STALL ") :])


def bench_stall(runs: int, photos: Path, timeout: float) -> None:
    """The event-loop stall after the first photo, shipped vs the references (module docstring)."""
    found: dict[str, list[dict[str, object]]] = {m: [] for m in STALL_MODES}
    for i in range(runs):
        for mode in STALL_MODES if i % 2 == 0 else reversed(STALL_MODES):
            r = _stall_run(mode, photos, timeout)
            found[mode].append(r)
            _emit(bench="post_paint_stall_run", mode=mode, run=i, **r)
    for mode, rs in found.items():
        ready = [r["ready_s"] for r in rs if "ready_s" in r]
        _emit(
            bench="post_paint_stall_ms",
            mode=mode,
            median=round(statistics.median(r["max_gap_ms"] for r in rs), 1),
            max=max(r["max_gap_ms"] for r in rs),
            runs=len(rs),
            window_s=STALL_SECONDS,
            tick_ms=TICK_MS,
            first_paint_ms=round(statistics.median(r["first_paint_ms"] for r in rs), 1),
            smart_tools_ready_s=statistics.median(ready) if ready else None,
        )


def _segstudio_cmd() -> list[str]:
    return [sys.executable, "-m", "segstudio"]


def _compile_segstudio() -> None:
    """Byte-compile SegStudio's modules, as `pip install` does (labelme's venv has its .pyc files).

    Why: run from a source checkout with PYTHONDONTWRITEBYTECODE set, every start would compile ~60
    modules from source (~50 ms), a cost no installed copy pays."""
    import compileall

    import segstudio

    compileall.compile_dir(str(Path(segstudio.__file__).parent), quiet=1)


def _labelme_cmd(arg: str | None) -> list[str] | None:
    exe = (
        arg
        or shutil.which("labelme")
        or ("/tmp/labelme-venv/bin/labelme" if Path("/tmp/labelme-venv/bin/labelme").exists() else None)
    )
    if exe is None or not Path(exe).exists():
        return None
    if exe.endswith(("python", "python3")) or Path(exe).name.startswith("python"):
        return [exe, "-m", "labelme"]
    return [exe]


def bench_window(runs: int, labelme: list[str] | None, photos: Path, watch: XWatch, timeout: float) -> None:
    """Process start -> window with the first photo, SegStudio and labelme interleaved (module docstring)."""
    apps = {"segstudio": _segstudio_cmd(), **({"labelme": labelme} if labelme else {})}
    for a in apps:  # warm the disk cache, not counted
        _run_one(a, apps[a], photos, watch, timeout)
    times: dict[str, list[float]] = {a: [] for a in apps}
    cpu: dict[str, list[float]] = {a: [] for a in apps}
    for i in range(runs):
        order = list(apps) if i % 2 == 0 else list(reversed(apps))  # interleaved, alternating who goes first
        for a in order:
            t, c = _run_one(a, apps[a], photos, watch, timeout)
            times[a].append(t)
            if c is not None:
                cpu[a].append(c)
            _emit(bench="startup_run", app=a, run=i, seconds=round(t, 3), cpu_s=c)
    med = {a: statistics.median(v) for a, v in times.items()}
    for a, v in times.items():
        _emit(
            bench="window_with_first_photo_s",
            app=a,
            median=round(med[a], 3),
            runs=len(v),
            min=round(min(v), 3),
            max=round(max(v), 3),
            cpu_s_median=round(statistics.median(cpu[a]), 3) if cpu[a] else None,
            photos=str(photos),
        )
    if labelme:
        ratio = {"segstudio_over_labelme": round(med["segstudio"] / med["labelme"], 3), "goal": 0.6}
        if cpu["segstudio"] and cpu["labelme"]:
            ratio["cpu_ratio"] = round(
                statistics.median(cpu["segstudio"]) / statistics.median(cpu["labelme"]), 3
            )
        _emit(bench="startup_ratio", **ratio)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per app (median reported)")
    ap.add_argument(
        "--stall-runs", type=int, default=3, help="runs per mode of the post-paint stall (0: skip)"
    )
    ap.add_argument(
        "--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of real photos (copied to temp)"
    )
    ap.add_argument("--labelme", default=None, help="labelme executable or a Python that has labelme")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--stall-child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stall_child:
        return _stall_child(*args.stall_child)
    if not args.photos.is_dir():
        print(f"no photo folder at {args.photos}: pass --photos FOLDER", file=sys.stderr)
        return 2
    try:
        watch = XWatch()
    except RuntimeError as exc:
        print(f"bench.startup: {exc}", file=sys.stderr)
        return 2
    labelme = _labelme_cmd(args.labelme)
    if labelme is None:
        _emit(
            bench="startup",
            note="labelme not found (pass --labelme EXE or install it in its own venv, "
            "e.g. /tmp/labelme-venv); measuring SegStudio only",
        )
    _compile_segstudio()
    if args.runs > 0:
        bench_window(args.runs, labelme, args.photos, watch, args.timeout)
    if args.stall_runs > 0:
        bench_stall(args.stall_runs, args.photos, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
