"""The containment helper: every class of escaping path is refused, ordinary layouts resolve."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from segstudio.core.errors import SegStudioError, UnsafePathError
from segstudio.core.paths import contained_relative, is_single_name, resolve_inside

ESCAPES = [
    "/etc/passwd",
    "//server/share/x.jpg",
    "\\\\server\\share\\x.jpg",
    "C:\\Windows\\win.ini",
    "C:x.jpg",
    "c:/x.jpg",
    "\\x.jpg",
    "..",
    "../x.jpg",
    "../../../../../../../../tmp/x",
    "a/../../x",
    "a/b/../../../x",
    "a\\..\\..\\x",
    "./../x",
    "a/./../.././x",
    "x\x00.jpg",
    "x\n.jpg",
    "\ud800.jpg",  # a lone surrogate: no file name on this system
    "",
    "   ",
    ".",
    "a/..",
    "./",
]


@pytest.mark.parametrize("written", ESCAPES)
def test_escaping_or_unusable_paths_are_refused(written, tmp_path):
    with pytest.raises(UnsafePathError):
        contained_relative(written)
    with pytest.raises(SegStudioError):  # the CLI prints SegStudioError without a traceback
        resolve_inside(tmp_path, written)


@pytest.mark.parametrize("written", [5, None, ["a"], {"a": 1}, b"x.jpg"])
def test_non_text_is_refused(written):
    with pytest.raises(UnsafePathError, match="not a path"):
        contained_relative(written)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("written", "base", "expected"),
    [
        ("img.jpg", "", "img.jpg"),
        ("sub/img.jpg", "", "sub/img.jpg"),
        ("sub\\img.jpg", "", "sub/img.jpg"),
        ("./img.jpg", "", "img.jpg"),
        ("../images/img.jpg", "annotations", "images/img.jpg"),
        ("a/../b.jpg", "", "b.jpg"),
        ("..\\images\\img.jpg", "annotations", "images/img.jpg"),
        ("%2e%2e/x.jpg", "", "%2e%2e/x.jpg"),  # not a traversal: a folder literally named so
        ("...", "", "..."),
        ("\udcff.jpg", "", "\udcff.jpg"),  # surrogate-escaped non-UTF-8 byte: a real Linux name
    ],
)
def test_inside_paths_resolve_without_dots(written, base, expected, tmp_path):
    assert contained_relative(written, base) == PurePosixPath(expected)
    resolved = resolve_inside(tmp_path, written, base=base)
    assert resolved == tmp_path.joinpath(*PurePosixPath(expected).parts)
    assert ".." not in resolved.parts


def test_base_counts_against_the_root(tmp_path):
    assert contained_relative("../x.jpg", "a/b") == PurePosixPath("a/x.jpg")
    with pytest.raises(UnsafePathError):
        contained_relative("../../../x.jpg", "a/b")


def test_symlinks_inside_a_dataset_are_read_as_they_are_but_strict_mode_refuses_them(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked")
    assert resolve_inside(root, "linked/secret.jpg") == root / "linked" / "secret.jpg"
    with pytest.raises(UnsafePathError, match="symbolic link"):
        resolve_inside(root, "linked/secret.jpg", strict=True)
    # `link/..` is resolved on the text, never by the OS through the link
    assert resolve_inside(root, "linked/../x.jpg") == root / "x.jpg"


def test_allow_outside_reads_what_the_file_names(tmp_path):
    assert resolve_inside(tmp_path / "root", "/etc/passwd", allow_outside=True) == Path("/etc/passwd")
    assert resolve_inside(tmp_path / "root", "../x.jpg", allow_outside=True) == tmp_path / "x.jpg"
    with pytest.raises(UnsafePathError):  # NUL is never a file name
        resolve_inside(tmp_path, "x\x00", allow_outside=True)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a.jpg", True),
        ("city_000000_000001", True),
        ("a/b", False),
        ("..", False),
        (".", False),
        ("a\\b", False),
        ("", False),
        (5, False),
        ("x\x00", False),
    ],
)
def test_single_names(name, ok):
    assert is_single_name(name) is ok


def test_display_path_shows_undecodable_bytes_as_replacement_characters():
    from segstudio.core.paths import display_path

    assert display_path(os.fsdecode(b"caf\xe9.jpg")) == "caf\ufffd.jpg"
    assert display_path("café.jpg") == "café.jpg"
