"""What the screenshot scripts share: wait for the window, let it repaint, save a small PNG.

The scripts run as files (`python packaging/screenshots.py ...`), so this sibling module is
importable as `shots` without packaging being a package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for(app, condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Process events until `condition()`; a script that waits too long stops with a message."""
    deadline = time.monotonic() + seconds
    while not condition():
        app.processEvents()
        time.sleep(0.02)
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")


def settle(app, seconds: float = 1.5) -> None:
    """Let thumbnails, counts and repaints from background threads arrive."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save_png(widget, path: Path) -> None:
    """Grab `widget` and save it with a 256-colour palette, so each picture stays small."""
    from PIL import Image

    raw = path.with_suffix(".raw.png")
    widget.grab().save(str(raw))
    with Image.open(raw) as image:
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    raw.unlink()
    print(f"saved {path} ({path.stat().st_size // 1024} KB)")
