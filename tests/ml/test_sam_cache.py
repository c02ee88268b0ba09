"""The SAM embedding cache and prefetch plan: plain bookkeeping, no torch, no Qt."""

from __future__ import annotations

import sys
import threading

import pytest

from segstudio.ml.sam_cache import DEFAULT_MAX_BYTES, EmbeddingCache, embedding_key, embedding_plan

MB = 1 << 20


def test_lru_is_bounded_by_bytes_and_get_refreshes():
    cache = EmbeddingCache(max_bytes=12 * MB)
    for name in "abc":
        cache.put(embedding_key(name, "v1"), name.upper(), 4 * MB)
    assert cache.nbytes == 12 * MB and len(cache) == 3
    assert cache.get(("a", "v1")) == "A"  # a is now the most recently used
    cache.put(("d", "v1"), "D", 4 * MB)  # over budget: the least recently used (b) goes
    assert cache.keys() == [("c", "v1"), ("a", "v1"), ("d", "v1")]
    assert cache.get(("b", "v1")) is None and cache.nbytes == 12 * MB


def test_a_changed_file_is_another_key_and_replaces_the_old_version():
    cache = EmbeddingCache(max_bytes=64 * MB)
    cache.put(embedding_key("x.jpg", "hash1"), "old", 4 * MB)
    assert embedding_key("x.jpg", "hash2") not in cache  # new pixels: recomputed, never the stale one
    cache.put(embedding_key("x.jpg", "hash2"), "new", 4 * MB)
    assert cache.keys() == [("x.jpg", "hash2")] and cache.nbytes == 4 * MB
    cache.put(("y.jpg", "h"), "y", 4 * MB)
    cache.forget(["x.jpg"])
    assert cache.keys() == [("y.jpg", "h")]


def test_an_entry_over_the_whole_budget_is_not_kept_and_bad_budget_is_refused():
    cache = EmbeddingCache(max_bytes=MB)
    cache.put(("big", "v"), "B", 2 * MB)
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError, match="positive"):
        EmbeddingCache(0)


def test_default_budget_holds_the_current_image_and_its_prefetches():
    vit_embedding = 256 * 64 * 64 * 4  # SAM's (1, 256, 64, 64) float32 features
    assert DEFAULT_MAX_BYTES // vit_embedding >= 1 + 3


def test_plan_puts_current_first_then_next_images_not_cached():
    cached = {"b"}
    plan = embedding_plan("a", ["b", "c", None, "c", "a", "d", "e"], cached.__contains__, limit=3)
    assert plan == ["a", "c", "d"]  # b cached (still counts toward the look-ahead), e beyond it
    assert embedding_plan("a", ["b", "c"], {"a", "b", "c"}.__contains__) == []
    assert embedding_plan(None, ["b", "c"], set().__contains__, limit=1) == ["b"]


def test_cache_is_safe_across_threads():
    cache = EmbeddingCache(max_bytes=10 * MB)

    def work(n: int) -> None:
        for i in range(200):
            cache.put((f"{n}-{i % 7}", "v"), i, MB)
            cache.get((f"{n}-{(i + 3) % 7}", "v"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.nbytes == len(cache) * MB <= 10 * MB


def test_module_imports_neither_torch_nor_qt():
    import subprocess

    code = (
        "import sys, segstudio.ml.sam_cache; "
        "bad = [m for m in ('torch', 'PySide6', 'segment_anything') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
