"""The trainer's JSON-lines protocol (ml/progress.py): the writer refuses undeclared fields and every
field its readers (the fine-tune panel, the console) look up is declared, so neither side drifts."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest

import segstudio
from segstudio.ml.progress import EVENT_FIELDS, ProgressWriter, parse_progress_line

PACKAGE = Path(segstudio.__file__).parent
READERS = {
    PACKAGE / "gui" / "finetune_panel.py": {"event", "done"},
    PACKAGE / "commands" / "console.py": {"e", "event"},
}
#: keys of the nested values some fields hold ({value, plus_minus, n} estimates; metrics dicts)
NESTED = {"value", "plus_minus", "n"}


def test_the_writer_refuses_an_undeclared_field():
    out = io.StringIO()
    writer = ProgressWriter(out)
    writer.emit("val", epoch=1, miou=0.5, gain={"value": 0.1, "plus_minus": 0.05, "n": 4})
    assert parse_progress_line(out.getvalue())["miou"] == 0.5
    with pytest.raises(ValueError, match="miou_typo"):
        writer.emit("val", epoch=1, miou_typo=0.5)
    assert json.loads(out.getvalue().splitlines()[-1])["event"] == "val"  # nothing written for the bad one


def _keys_read(path: Path, names: set[str]) -> set[str]:
    """String keys read as name["k"] or name.get("k") for the given variable names."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target, key = None, None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            target, key = node.value, node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            target, key = node.func.value, node.args[0].value
        if isinstance(target, ast.Name) and target.id in names and isinstance(key, str):
            keys.add(key)
    return keys


@pytest.mark.parametrize("path", sorted(READERS), ids=lambda p: p.name)
def test_every_field_a_reader_uses_is_declared(path):
    declared = set().union(*EVENT_FIELDS.values()) | {"event"} | NESTED
    used = _keys_read(path, READERS[path])
    assert len(used) >= 8, f"the reader check found only {used} in {path.name}"
    assert used <= declared, f"{path.name} reads fields no event declares: {sorted(used - declared)}"
