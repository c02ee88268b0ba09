from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from segstudio.core.atomic import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
)


def test_write_bytes_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"two two")
    assert target.read_bytes() == b"two two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_text_and_json_are_utf8(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "t.txt", "héllo wörld ✓")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo wörld ✓"
    atomic_write_json(tmp_path / "d.json", {"name": "Käse", "n": [1, 2]})
    raw = (tmp_path / "d.json").read_text(encoding="utf-8")
    assert "Käse" in raw and raw.endswith("\n")
    assert json.loads(raw) == {"name": "Käse", "n": [1, 2]}


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"partial new content")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(TEMP_SUFFIX)]


def test_unserialisable_json_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}


def test_written_files_get_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "perm.bin"
    atomic_write_bytes(target, b"x")
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o666 & ~mask  # not mkstemp's 0600


def test_non_ascii_and_space_paths(tmp_path: Path) -> None:
    target = tmp_path / "ordner mit leerzeichen" / "bild ü 画像.bin"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
