"""Getting a SAM checkpoint on demand, against a real HTTP server on 127.0.0.1 serving a random-weights
checkpoint: the right hash is used, every failure says so and leaves no file with the final name,
a wrong file is removed, an interrupted one resumes from its .part with an HTTP Range request."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace

import pytest

from segstudio.core.errors import CancelledError
from segstudio.ml import sam_download
from segstudio.ml.sam_download import DownloadError, OfflineError, SamCheckpoint
from tests.http_files import FileServer


@pytest.fixture
def server():
    s = FileServer().start()
    yield s
    s.stop()


@pytest.fixture
def cache(tmp_path):
    (tmp_path / "cache").mkdir()
    return tmp_path / "cache"


@pytest.fixture
def weights(tiny_sam_checkpoint) -> bytes:
    return tiny_sam_checkpoint.read_bytes()


def _entry(server, data: bytes, sha: str | None = None) -> SamCheckpoint:
    server.behaviour.files["tiny_sam.pth"] = data
    entry = SamCheckpoint(
        "tiny",
        "Tiny SAM",
        "tiny_sam.pth",
        "https://example.invalid/tiny_sam.pth",
        len(data),
        sha or hashlib.sha256(data).hexdigest(),
        "Apache-2.0",
        "vit_b",
    )
    return sam_download.catalog((entry,), base_url=server.url)[0]


def test_right_hash_is_downloaded_verified_and_used(server, weights, cache):
    from segstudio.ml import sam_engine

    entry = _entry(server, weights)
    seen = []
    path = sam_download.download(entry, cache, progress=lambda done, total: seen.append((done, total)))
    assert path == cache / "tiny_sam.pth" and path.read_bytes() == weights
    assert seen[-1] == (len(weights), len(weights)) and all(
        a <= b for (a, _), (b, _) in itertools.pairwise(seen)
    )
    assert [p.name for p in cache.iterdir()] == ["tiny_sam.pth"]  # no .part left
    assert sam_download.cached_path(entry, cache) == path
    runtime = sam_engine.use_sam_checkpoint(path)  # the downloaded file is a working SAM
    assert runtime.model.image_encoder is not None
    server.behaviour.requests.clear()
    assert sam_download.download(entry, cache) == path and server.behaviour.requests == []  # cached


def test_wrong_hash_removes_the_file(server, weights, cache):
    entry = _entry(server, weights, sha="0" * 64)
    with pytest.raises(DownloadError, match=r"SHA-256 mismatch.*removed"):
        sam_download.download(entry, cache)
    assert list(cache.iterdir()) == []
    assert sam_download.cached_path(entry, cache) is None


def test_truncated_transfer_keeps_only_a_part_and_resumes_with_range(server, weights, cache):
    entry = _entry(server, weights)
    server.behaviour.cut_after = len(weights) // 3
    with pytest.raises(DownloadError, match=r"broke off.*resumes"):
        sam_download.download(entry, cache)
    assert [p.name for p in cache.iterdir()] == ["tiny_sam.pth.part"]  # documented: kept for resume
    assert (cache / "tiny_sam.pth.part").stat().st_size == len(weights) // 3
    server.behaviour.cut_after = None
    path = sam_download.download(entry, cache)
    assert server.behaviour.requests[-1] == f"bytes={len(weights) // 3}-"  # resumed, not restarted
    assert path.read_bytes() == weights and [p.name for p in cache.iterdir()] == ["tiny_sam.pth"]


def test_server_gone_mid_way_then_offline_then_back(weights, cache):
    first = FileServer().start()
    entry = _entry(first, weights)
    first.behaviour.cut_after = 1000
    with pytest.raises(DownloadError, match="broke off"):
        sam_download.download(entry, cache)
    first.stop()  # the server is gone
    with pytest.raises(OfflineError, match=r"offline.*Use a file"):
        sam_download.download(entry, cache)
    assert not (cache / "tiny_sam.pth").exists()
    back = FileServer().start()
    try:
        back.behaviour.files["tiny_sam.pth"] = weights
        path = sam_download.download(replace(entry, url=f"{back.url}/tiny_sam.pth"), cache)
        assert back.behaviour.requests == ["bytes=1000-"] and path.read_bytes() == weights
    finally:
        back.stop()


def test_a_resumed_file_with_a_wrong_prefix_fails_the_hash_and_is_removed(server, weights, cache):
    entry = _entry(server, weights)
    (cache / "tiny_sam.pth.part").write_bytes(b"\0" * 500)  # garbage from elsewhere
    with pytest.raises(DownloadError, match="mismatch"):
        sam_download.download(entry, cache)
    assert list(cache.iterdir()) == []
    assert sam_download.download(entry, cache).read_bytes() == weights  # a clean retry works


def test_a_server_ignoring_range_restarts_from_zero(server, weights, cache):
    entry = _entry(server, weights)
    (cache / "tiny_sam.pth.part").write_bytes(weights[:700])
    server.behaviour.ignore_range = True
    assert sam_download.download(entry, cache).read_bytes() == weights


def test_cancel_keeps_the_part_for_resume(server, weights, cache):
    entry = _entry(server, weights)
    calls = []
    with pytest.raises(CancelledError, match="cancelled"):
        sam_download.download(entry, cache, should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert not (cache / "tiny_sam.pth").exists()
    assert sam_download.download(entry, cache).read_bytes() == weights


def test_an_unverified_entry_is_refused_before_any_request(server, weights, cache):
    entry = replace(_entry(server, weights), sha256=None)
    with pytest.raises(DownloadError, match=r"no published SHA-256.*Use a file"):
        sam_download.download(entry, cache)
    assert server.behaviour.requests == [] and list(cache.iterdir()) == []


def test_catalog_lists_real_sources_and_base_url_redirects(monkeypatch):
    entries = sam_download.catalog()
    assert {e.arch for e in entries} >= {"vit_t", "vit_b", "vit_l", "vit_h"}
    vit_b = next(e for e in entries if e.arch == "vit_b")
    assert vit_b.url.startswith("https://dl.fbaipublicfiles.com/") and vit_b.size == 375_042_383
    assert all(e.sha256 is None or len(e.sha256) == 64 for e in entries)
    monkeypatch.setenv(sam_download.BASE_URL_ENV, "http://127.0.0.1:9")
    assert all(e.url.startswith("http://127.0.0.1:9/") for e in sam_download.catalog())


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(sam_download.CACHE_ENV, str(tmp_path / "c"))
    assert sam_download.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(sam_download.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sam_download.cache_dir() == tmp_path / "segstudio" / "sam"


def test_module_imports_neither_torch_nor_qt():
    import subprocess
    import sys

    code = "import sys, segstudio.ml.sam_download; print('torch' in sys.modules, 'PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_a_catalog_file_replaces_the_list_and_a_bad_one_is_a_clear_error(monkeypatch, tmp_path):
    import json

    listing = tmp_path / "catalog.json"
    listing.write_text(
        json.dumps(
            [
                dict(
                    key="k",
                    name="N",
                    filename="f.pt",
                    url="http://x/f.pt",
                    size=3,
                    sha256=None,
                    licence="MIT",
                    arch="vit_b",
                )
            ]
        )
    )
    monkeypatch.setenv(sam_download.CATALOG_ENV, str(listing))
    assert [e.key for e in sam_download.catalog()] == ["k"]
    listing.write_text("{not json")
    with pytest.raises(DownloadError, match="not a SAM catalogue"):
        sam_download.catalog()
