"""The layer rule of DESIGN.md, checked: pure packages never pull in Qt (nor, for core/export, torch).

Each package and every submodule found by `pkgutil.walk_packages` is imported in a fresh
interpreter (so nothing the test runner already imported can hide a violation), then
`sys.modules` is inspected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    package = importlib.import_module(sys.argv[1])
    imported = [package.__name__]
    errors = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as error:  # reported, and fails the test
            errors[info.name] = f"{type(error).__name__}: {error}"
    roots = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"imported": imported, "errors": errors, "roots": roots}))
    """
)

QT = {"PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "shiboken6"}
TORCH = {"torch", "torchvision"}


def _import_in_fresh_interpreter(package: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, package],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("segstudio.core", QT | TORCH),
        ("segstudio.export", QT | TORCH),
        ("segstudio.ml", QT),
    ],
)
def test_pure_layers_do_not_import_forbidden_packages(package: str, forbidden: set[str]) -> None:
    report = _import_in_fresh_interpreter(package)
    assert not report["errors"], f"submodules of {package} failed to import: {report['errors']}"
    leaked = forbidden & set(report["roots"])
    assert not leaked, f"importing {package} (modules: {report['imported']}) pulled in {sorted(leaked)}"


def test_probe_detects_a_violation() -> None:
    """The same probe does see Qt when a package imports it (so a pass above means something)."""
    pytest.importorskip("PySide6")
    report = _import_in_fresh_interpreter("segstudio.gui")
    assert len(report["imported"]) > 1, "segstudio.gui has no submodules to probe"
    assert "PySide6" in report["roots"]
