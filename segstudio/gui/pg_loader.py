"""`pg`: pyqtgraph, imported without the two costs on our start-up path that buy us nothing.

Every GUI module takes pyqtgraph from here (`from segstudio.gui.pg_loader import pg`), so the first
import, whichever module does it, is the cheap one.

1. pyqtgraph 0.13/0.14 keeps "mirror" modules `pyqtgraph.Qt.QtCore/QtGui/QtWidgets` and fills them
   by walking `dir(PySide6.QtX)` and fetching every name. PySide6 creates its classes lazily, on
   first access, so that walk builds every Qt class in three modules: ~0.16 s CPU, about half of
   pyqtgraph's import (bench/startup.py). Here the mirrors are installed first as thin modules that
   fetch a name from PySide6 when it is first asked for, and during the import `dir()` of the three
   PySide6 modules is empty, so the walk copies nothing. pyqtgraph sees the same objects either way.
2. The CUDA Python bindings its RawImageWidget loads for a GPU path we never use: with torch's CUDA
   wheels installed, that import alone costs 0.3-0.5 s (bench/gui.py, window_ready_ms). The block is
   lifted right after, so torch can still import them later.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["MIRRORED", "load_pyqtgraph", "pg"]

MIRRORED = ("QtCore", "QtGui", "QtWidgets")


def _lazy_mirror(name: str, source: types.ModuleType) -> types.ModuleType:
    """A module standing for `source` whose names are fetched (and kept) on first access."""
    mirror = types.ModuleType(f"pyqtgraph.Qt.{name}", f"{source.__name__}, fetched name by name on first use")

    def __getattr__(attr: str) -> Any:  # PEP 562: only called for names not yet in the mirror
        if attr == "__path__":  # a plain module, not a package
            raise AttributeError(attr)
        value = getattr(source, attr)
        setattr(mirror, attr, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(dir(source)) | set(vars(mirror)))

    mirror.__getattr__ = __getattr__  # type: ignore[attr-defined]
    mirror.__dir__ = __dir__  # type: ignore[attr-defined]
    return mirror


def _empty_dir() -> list[str]:
    return []


def load_pyqtgraph() -> types.ModuleType:
    """pyqtgraph, imported once with lazy Qt mirrors and without the CUDA bindings (module docstring)."""
    if "pyqtgraph" in sys.modules:  # already imported (by us or someone else): nothing left to save
        return sys.modules["pyqtgraph"]
    sources = {name: importlib.import_module(f"PySide6.{name}") for name in MIRRORED}
    saved_dir: dict[str, Callable[[], list[str]] | None] = {}
    for name, source in sources.items():
        saved_dir[name] = vars(source).get("__dir__")
        source.__dir__ = _empty_dir  # type: ignore[attr-defined] - pyqtgraph's copy loop walks nothing
        sys.modules[f"pyqtgraph.Qt.{name}"] = _lazy_mirror(name, source)
    blocked = "cuda.bindings" not in sys.modules
    if blocked:
        sys.modules["cuda.bindings"] = None  # type: ignore[assignment] - makes `from cuda.bindings import` fail fast
    try:
        import pyqtgraph
    except BaseException:
        for name in MIRRORED:  # leave no half-made mirror behind for a later attempt
            sys.modules.pop(f"pyqtgraph.Qt.{name}", None)
        raise
    finally:
        for name, source in sources.items():
            if saved_dir[name] is None:
                vars(source).pop("__dir__", None)
            else:
                source.__dir__ = saved_dir[name]  # type: ignore[attr-defined]
        if blocked and sys.modules.get("cuda.bindings", 0) is None:
            del sys.modules["cuda.bindings"]
    return pyqtgraph


pg = load_pyqtgraph()
