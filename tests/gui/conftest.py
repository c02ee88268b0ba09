"""Fixtures shared by the workbench's window tests: a folder of real demo photos and a shown window."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"
WINDOW_WAIT = 20_000  # ms; generous for a loaded CI machine


@pytest.fixture
def demo_photos(tmp_path: Path) -> Path:
    """A fresh copy of the demo photos (the tests add, delete and rename files in it)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    names = sorted(p.name for p in DEMO.glob("*.jpg"))[:4]
    if not names:
        pytest.skip("resources/demo has no photos")
    for name in names:
        shutil.copy2(DEMO / name, folder / name)
    return folder


@pytest.fixture
def shown_window(qtbot) -> Iterator[Callable[..., object]]:
    """`shown_window(folder=None, size=(1400, 900))`: a MainWindow on screen, its folder opened."""
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    windows = []

    def make(folder: Path | None = None, size: tuple[int, int] = (1400, 900)) -> MainWindow:
        window = MainWindow(AppSettings())
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        if folder is not None:
            window.open_folder(folder)
            qtbot.waitUntil(
                lambda: window.session is not None and window.session.document is not None,
                timeout=WINDOW_WAIT,
            )
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def noise_project(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """`noise_project(names)`: a project over random 64x48 PNGs with these names (cheap worker tests)."""
    import numpy as np
    from PIL import Image

    from segstudio.core.project import Project

    opened = []

    def make(names: tuple[str, ...]) -> Project:
        folder = tmp_path / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for name in names:
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / name)
        opened.append(Project.open(folder))
        return opened[-1]

    yield make
    for project in opened:
        project.close()


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    """Three small images (48x64): every model and panel action on them stays cheap."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        pixels[:, : 20 + 10 * i] = (30, 140, 30)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def small_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """`small_checkpoint(scheme)`: a random-weights SegStudio checkpoint (lraspp, seconds) for these classes."""

    def make(scheme, name: str = "model.pt") -> Path:
        import torch

        from segstudio.ml.models import build_model
        from segstudio.ml.weights import save_checkpoint

        torch.manual_seed(0)
        model = build_model("lraspp_mobilenet_v3_large", scheme.num_classes).eval()
        return save_checkpoint(tmp_path / name, model, "lraspp_mobilenet_v3_large", scheme)

    return make


def clicks_shown(window, timeout: float = 30.0) -> None:
    """Let the event loop run until every smart click made so far is shown: the click engines work on
    the smart tools' click worker (gui/click_queue.py), so a click's mask arrives a moment after it."""
    import time

    from PySide6.QtTest import QTest

    deadline = time.monotonic() + timeout
    while window.tools.smart.busy:
        if time.monotonic() > deadline:
            raise AssertionError(f"a smart click was still computing after {timeout} s")
        QTest.qWait(5)


def pick_class(qtbot, window, index: int) -> None:
    """Click the class's row in the palette, as a user does."""
    from PySide6.QtCore import QPoint, Qt

    palette = window.palette
    rect = palette.list.visualItemRect(palette.list.item(palette.order.index(index)))
    qtbot.mouseClick(palette.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center() + QPoint(20, 0))
    assert window.tool_state.active_class == index


def use_engine(window, qtbot, name: str, timeout: int = 60_000) -> None:
    """Pick the engine in the options bar's combo box with the keyboard, as a user does; wait until the
    smart tools have it ready."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    combo = window.smart_options.engine_combo
    target = combo.findData(name)
    assert target >= 0, f"{name} is not offered"
    combo.setFocus()
    for _ in range(combo.count()):
        if combo.currentIndex() == target:
            break
        QTest.keyClick(combo, Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up)
    assert window.tool_state.engine == name
    qtbot.waitUntil(lambda: name in window.tools.smart.engines, timeout=timeout)
