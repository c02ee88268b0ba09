"""Start-up rules: no torch on the GUI thread at import, and clear messages without a display."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from segstudio.gui import app


def _assert_window_import_skips(*modules: str) -> None:
    """Importing the main window in a fresh interpreter leaves every one of `modules` unloaded."""
    code = (
        "import sys; import segstudio.gui.main_window, segstudio.gui.app; "
        f"bad = [m for m in {modules!r} if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_main_window_import_does_not_import_torch():
    _assert_window_import_skips("torch", "torchvision", "segstudio.ml")


def test_main_window_import_leaves_pyqtgraph_for_the_fine_tune_window():
    """The canvas is plain Qt; pyqtgraph (~0.3 s untrimmed) loads with the fine-tune curves only."""
    _assert_window_import_skips("pyqtgraph")


def test_pyqtgraph_import_leaves_most_qt_classes_unbuilt():
    """PySide6 builds a class on first access; pyqtgraph's own mirror copy would build all of them (~0.16 s).
    Through `gui.pg_loader` (the fine-tune window's curves) it builds only what is used, and pyqtgraph
    still sees PySide6's classes."""
    code = (
        "import sys, PySide6.QtCore as C, PySide6.QtGui as G, PySide6.QtWidgets as W; "
        "import segstudio.gui.main_window, segstudio.gui.app, segstudio.gui.finetune_plots; "
        "from segstudio.gui.pg_loader import pg; "
        "built = {m.__name__: (len(vars(m)), len(dir(m))) for m in (C, G, W)}; print(built); "
        "same = pg.QtWidgets.QGraphicsView is W.QGraphicsView and pg.QtCore.Signal is C.Signal "
        "and pg.QtGui.QImage is G.QImage and pg.Qt.QtVersion == C.__version__; "
        "sys.exit(0 if same and all(n < 0.6 * total for n, total in built.values()) else 1)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_display_gives_a_clear_message_and_exit_code_2(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    assert app.run_app(None) == 2
    err = capsys.readouterr().err
    assert "needs a graphical display" in err and "xvfb-run" in err


def test_missing_xcb_libraries_are_named_with_their_packages(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(app, "_ldconfig_names", lambda: {"libxcb-xkb.so.1"})
    monkeypatch.setattr(app.ctypes.util, "find_library", lambda name: None)
    assert app.run_app(None) == 2
    err = capsys.readouterr().err
    assert "libxcb-cursor0" in err and "sudo apt-get install" in err
    assert "libxcb-xkb1" not in err  # the one that is present is not reported


def test_explicit_platform_is_trusted(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert app.check_display() is None


@pytest.mark.parametrize("env", [{"WAYLAND_DISPLAY": "wayland-0"}])
def test_wayland_session_needs_no_xcb(monkeypatch, env):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(app, "missing_xcb_packages", lambda: ["libxcb-cursor0"])
    assert app.check_display() is None


def test_settings_are_isolated_in_tests(tmp_path):
    import os

    from segstudio.gui.settings import AppSettings

    settings = AppSettings()
    assert settings.path.startswith(os.environ["SEGSTUDIO_SETTINGS_DIR"])
    settings.add_recent_folder(tmp_path)
    settings.overlay_opacity = 0.25
    settings.sync()
    again = AppSettings()
    assert again.recent_folders() == [str(tmp_path.resolve())]
    assert again.overlay_opacity == 0.25


def test_pinned_pyside6_survives_many_emits_in_a_fresh_interpreter():
    """PySide6 6.12.0 dropped a reference to True on every emit() and aborted Python 3.11 after a
    few thousand signals (pyqtgraph emits on every mouse move). We pin 6.11.3; this guards the pin."""
    code = (
        "import sys\n"
        "from PySide6.QtCore import QObject, Signal\n"
        "import segstudio.gui.main_window\n"
        "class E(QObject):\n    s = Signal(int)\n"
        "e = E()\ne.s.connect(lambda v: None)\n"
        "before = sys.getrefcount(True)\n"
        "for i in range(50000):\n    e.s.emit(i)\n"
        "print('delta', sys.getrefcount(True) - before)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    delta = int(result.stdout.split("delta")[1])
    assert abs(delta) < 1000, f"emit() leaks references to True ({delta}); check the PySide6 pin"


def test_pyqtgraph_import_skips_cuda_bindings_but_leaves_them_importable():
    """pyqtgraph (the fine-tune curves, through gui.pg_loader) does not pull in the CUDA bindings."""
    pytest.importorskip("cuda.bindings")
    code = (
        "import sys, segstudio.gui.finetune_plots; loaded = 'cuda.bindings' in sys.modules; "
        "import cuda.bindings.runtime; print(loaded)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_main_window_import_leaves_the_click_engines_for_later():
    """scikit-image/SciPy (the smart tools' engines) load when the first image opens, not at start-up."""
    _assert_window_import_skips("segstudio.core.interactive.engines", "scipy", "skimage.segmentation")


def test_window_build_does_not_import_the_click_engines():
    """scikit-image + SciPy (~1 s) load after the first image is painted, not while the window is built."""
    code = (
        "import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
        "from segstudio.gui.main_window import MainWindow; from segstudio.gui.settings import AppSettings; "
        "w = MainWindow(AppSettings()); w.tool_state.restore({'engine': 'grabcut'}); "
        "w.tool_state.restore({'engine': 'geodesic'}); "  # a dropped engine in old settings is ignored
        "names = [w.smart_options.engine_combo.itemData(i) for i in range(w.smart_options.engine_combo.count())]; "
        "bad = [m for m in ('skimage', 'scipy', 'segstudio.core.interactive.engines') if m in sys.modules]; "
        "print(bad, names, w.tool_state.engine); "
        "sys.exit(1 if bad or 'superpixel' not in names or w.tool_state.engine != 'grabcut' else 0)"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_first_photo_is_painted_before_the_click_engines_load(shared_testdata, tmp_path):
    """The engines still get prepared for the first image, but only after the canvas painted it, and their
    import (scikit-image, SciPy: ~1 s) runs on the worker, not the GUI thread (bench.startup measures the
    stall this avoids). The whole path, smart tools included, never imports pyqtgraph."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for src in sorted((shared_testdata / "camvid_sample" / "images").iterdir())[:2]:
        (folder / src.name).write_bytes(src.read_bytes())
    code = f"""
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
app = QApplication([])
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings
import threading
from segstudio.gui import smart_tools
importers = []
real_engines = smart_tools._engines
def engines():
    if smart_tools._loaded is None:  # this call imports scikit-image and SciPy (~1 s)
        importers.append(threading.current_thread() is threading.main_thread())
    return real_engines()
smart_tools._engines = engines
w = MainWindow(AppSettings()); w.show()
seen = []
class Spy(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and w.tools.smart.image is not None:
            seen.append('segstudio.core.interactive.engines' in sys.modules)
        return False
spy = Spy(); w.canvas.viewport().installEventFilter(spy)
w.open_folder({str(folder)!r})
t0 = time.time()
while not w.tools.smart.engines and time.time() - t0 < 60:
    app.processEvents(); time.sleep(0.01)
print(seen[:3], sorted(w.tools.smart.engines), 'pyqtgraph' in sys.modules, importers)
ok = seen and seen[0] is False and w.tools.smart.engines and 'pyqtgraph' not in sys.modules
sys.exit(0 if ok and importers and not any(importers) else 1)  # imported, and never on the GUI thread
"""
    env = dict(
        os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg")
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_engines_registered_by_another_import_are_listed():
    """SAM's loader imports the engines module itself (on its worker): its engine shows in the list even
    when no image preparation has imported the engines yet; a module still being imported is not read."""
    code = (
        "import sys; from segstudio.gui import smart_tools as st; "
        "from segstudio.core.interactive import engines; engines.register_engine('fake', engines.ENGINES['grabcut']); "
        "names = st.registered_engines(); print(sorted(names)); sys.exit(0 if 'fake' in names else 1)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
