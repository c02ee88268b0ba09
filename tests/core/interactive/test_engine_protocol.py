"""Every click engine the smart tools can be given honours `ClickEngine` (core/interactive/engine_protocol.py)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import segstudio
from segstudio.core.interactive.engine_protocol import ClickEngine
from segstudio.core.interactive.engines import ENGINES, Engine
from segstudio.core.interactive.prompts import Prompts

PACKAGE = Path(segstudio.__file__).parent


def _import_every_engine_module() -> list[str]:
    """Modules that register an engine or define one (a new engine is checked without editing this test)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "register_engine(" in text or "(Engine)" in text:
            name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
            importlib.import_module(name)
            names.append(name)
    return names


def _engine_classes() -> list[type]:
    out, todo = [], [Engine]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def _params(func) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize("method", ["prepare", "region"])
def test_every_engine_class_has_the_protocols_signatures(method):
    modules = _import_every_engine_module()
    assert "segstudio.core.interactive.engines" in modules
    classes = _engine_classes()
    assert {c.__name__ for c in classes} >= {
        "SuperpixelEngine",
        "GrabCutEngine",
        "SAMEngine",
        "CRFClickEngine",
    }
    want = _params(getattr(ClickEngine, method))
    for cls in classes:
        assert _params(getattr(cls, method)) == want, f"{cls.__name__}.{method}"
        for attr in ("name", "needs_probabilities", "handles_box", "object_bounded", "ready"):
            assert hasattr(cls, attr), f"{cls.__name__} lacks {attr}"


def test_registered_engines_are_click_engines_that_answer_a_click():
    _import_every_engine_module()
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 20:40] = 200
    probs = np.zeros((2, 40, 60), np.float32)
    probs[0], probs[1, 10:30, 20:40] = 1.0, 1.0
    probs[0, 10:30, 20:40] = 0.0
    checked = []
    for name, factory in ENGINES.items():
        if name == "sam":
            continue  # needs a checkpoint; its class is checked above
        engine = factory()
        assert isinstance(engine, ClickEngine), name
        engine.prepare(image, probs if engine.needs_probabilities else None)
        assert engine.ready
        prompts = Prompts()
        prompts.positives.append((30.0, 20.0))
        region = engine.region(prompts, 1)
        assert region.shape == (40, 60) and region.dtype == bool and region[20, 30], name
        checked.append(name)
    assert {"superpixel", "grabcut", "crf"} <= set(checked)
