from __future__ import annotations

import os
from pathlib import Path

import pytest

from segstudio.core.natural_sort import natural_key, natural_sorted
from segstudio.core.scan import scan_images


def test_natural_order() -> None:
    names = [
        "img10.jpg",
        "img2.jpg",
        "img1.jpg",
        "Img3.jpg",
        "img02b.jpg",
        "a/img1.jpg",
        "a b/x.jpg",
        "a/b/c.jpg",
        "z.jpg",
    ]
    assert natural_sorted(names) == [
        "a/b/c.jpg", "a/img1.jpg", "a b/x.jpg", "img1.jpg", "img2.jpg", "img02b.jpg", "Img3.jpg", "img10.jpg", "z.jpg",
    ]  # fmt: skip
    assert natural_key("frame_999") < natural_key("frame_1000")
    assert natural_key("x007") == natural_key("x7")  # ties broken by the plain string in natural_sorted
    assert natural_sorted(["x7", "x007"]) == ["x007", "x7"]


def test_scan_skips_hidden_non_images_and_excluded(tmp_path: Path) -> None:
    for rel in ["a.jpg", "B.PNG", "sub/c.tif", "sub/deep/d.webp", ".hidden.jpg", ".git/e.png", "notes.txt",
                "__MACOSX/f.jpg", "state/g.png", "sub/Thumbs.db"]:  # fmt: skip
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * len(rel))
    found = scan_images(tmp_path, exclude=(tmp_path / "state",))
    assert sorted(found) == ["B.PNG", "a.jpg", "sub/c.tif", "sub/deep/d.webp"]
    stat = found["sub/c.tif"]
    assert stat.size == len("sub/c.tif") and stat.mtime_ns == (tmp_path / "sub/c.tif").stat().st_mtime_ns


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_scan_does_not_loop_through_symlinked_folders(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "real" / "loop")
    os.symlink(tmp_path / "real" / "a.png", tmp_path / "link.png")
    found = scan_images(tmp_path)
    assert sorted(found) == ["link.png", "real/a.png"]
