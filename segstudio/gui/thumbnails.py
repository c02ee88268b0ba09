"""Thumbnails made in a background thread and cached on disk under the project state folder.

Why: decoding 10,000 photos on the GUI thread would freeze the browser for minutes. The list
view asks only for the rows it shows; requests go to one daemon thread, newest first (the rows
the user is looking at now; a `gui.background_tasks.JobQueue`), and each finished thumbnail arrives as a
queued Qt signal. The disk cache is keyed by content hash, so renames keep their thumbnails and edits get new ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.errors import ImageReadError
from segstudio.gui.background_tasks import JobQueue

__all__ = ["THUMB_SIZE", "ThumbnailLoader", "make_thumbnail"]

THUMB_SIZE = 96


def make_thumbnail(src: Path, size: int = THUMB_SIZE) -> bytes:
    """JPEG bytes of an orientation-corrected thumbnail that fits in size x size."""
    with Image.open(src) as img:
        img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale, much faster
        img = ImageOps.exif_transpose(img)
        img.thumbnail((size, size))
        if img.mode != "RGB":
            img = img.convert("RGBA")
            background = Image.new("RGB", img.size, (255, 255, 255))
            background.paste(img, mask=img.getchannel("A"))
            img = background
        out = io.BytesIO()
        img.save(out, "JPEG", quality=85)
        return out.getvalue()


class ThumbnailLoader(QObject):
    """`request(key, src, cache_name)`; `ready(key, QImage)` is emitted on the GUI thread."""

    ready = Signal(str, QImage)
    failed = Signal(str, str)

    def __init__(self, cache_dir: Path | None, size: int = THUMB_SIZE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache_dir = cache_dir
        self.size = size
        # Newest request first (the rows on screen now); a repeated key moves to the front.
        self._jobs = JobQueue(self, name="segstudio-thumbnails", lifo=True)
        self._jobs.done.connect(lambda key, image: self.ready.emit(key, image))
        self._jobs.failed.connect(lambda key, message: self.failed.emit(key, message))

    def request(self, key: str, src: Path | Callable[[], Path], cache_name: str) -> None:
        """`src` may be a callable giving the file (called on the loader's thread, only when the thumbnail
        is not cached: a team image kept in the server is fetched there, never on the GUI thread)."""
        self._jobs.submit(lambda state: self._image(src, cache_name), key=key)

    def clear_pending(self) -> None:
        self._jobs.clear_pending()

    def stop(self) -> None:
        self._jobs.stop(wait=True, timeout=5)

    def _image(self, src: Path | Callable[[], Path], cache_name: str) -> QImage:
        where = src if isinstance(src, Path) else Path(cache_name)
        try:
            data = self._load(src, cache_name)
        except Exception as exc:
            raise ImageReadError(where, str(exc)) from None
        image = QImage()
        if not image.loadFromData(data):
            raise ImageReadError(where, "thumbnail could not be decoded")
        return image

    def _load(self, src: Path | Callable[[], Path], cache_name: str) -> bytes:
        cached = self.cache_dir / f"{cache_name}_{self.size}.jpg" if self.cache_dir and cache_name else None
        if cached is not None and cached.is_file():
            return cached.read_bytes()
        data = make_thumbnail(src if isinstance(src, Path) else src(), self.size)
        if cached is not None:
            try:
                atomic_write_bytes(cached, data)
            except OSError:
                pass  # a read-only state folder only costs regenerating next time
        return data
