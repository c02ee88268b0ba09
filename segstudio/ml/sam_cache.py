"""Which SAM image embeddings to compute, in what order, and which to keep (no torch, no Qt).

Why a separate module: the cache and the prefetch plan are plain bookkeeping the inference worker,
the smart tools and the benchmark share; keeping them free of torch makes them cheap to test and
safe to import from the GUI once SAM is in use.

- An embedding is keyed by the image's identity *and* content (`embedding_key`: project path +
  content hash), so a file changed on disk gets a new key and is recomputed; storing the new
  version drops the old one at once.
- `EmbeddingCache` is a thread-safe LRU bounded by bytes (`DEFAULT_MAX_BYTES`: 32 MiB, i.e. 8 SAM
  ViT embeddings of 256x64x64 float32 = 4 MiB each).
- `embedding_plan` orders the work: the current image first, then the next images in browser order,
  skipping what is cached, never more than the cache holds beside the current one (a prefetch must
  not evict the embedding the user is clicking on).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

__all__ = ["DEFAULT_MAX_BYTES", "PREFETCH_COUNT", "EmbeddingCache", "embedding_key", "embedding_plan"]

DEFAULT_MAX_BYTES = 32 << 20  # 8 ViT embeddings (4 MiB each)
PREFETCH_COUNT = 3  # next images embedded ahead of the user (browser order)

T = TypeVar("T", bound=Hashable)


def embedding_key(rel_path: str, content_hash: str) -> tuple[str, str]:
    """(identity, version): the same path with other pixels is another embedding."""
    return (rel_path, content_hash)


class EmbeddingCache:
    """LRU of embeddings by `(identity, version)` key, bounded by total bytes; safe across threads."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple[Hashable, Hashable], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def keys(self) -> list[tuple[Hashable, Hashable]]:
        """Oldest first."""
        with self._lock:
            return list(self._items)

    def get(self, key: tuple[Hashable, Hashable]) -> Any | None:
        """The embedding (now the most recently used) or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: tuple[Hashable, Hashable], value: Any, nbytes: int) -> None:
        """Store `value`; older versions of the same image go now, then the least recently used
        entries until the total fits. An entry larger than the whole budget is not kept."""
        with self._lock:
            identity = key[0]
            for old in [k for k in self._items if k[0] == identity]:
                self._drop(old)
            if nbytes > self.max_bytes:
                return
            self._items[key] = (value, int(nbytes))
            self._bytes += int(nbytes)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    def forget(self, identities: Iterable[Hashable]) -> None:
        """Drop every version of these images (removed or renamed files)."""
        gone = set(identities)
        with self._lock:
            for key in [k for k in self._items if k[0] in gone]:
                self._drop(key)

    def _drop(self, key: tuple[Hashable, Hashable]) -> None:
        _, size = self._items.pop(key)
        self._bytes -= size


def embedding_plan(
    current: T | None, upcoming: Iterable[T | None], cached: Callable[[T], bool], limit: int = PREFETCH_COUNT
) -> list[T]:
    """What to embed, in order: `current` (unless cached), then up to `limit` of `upcoming` (browser
    order, duplicates, None and the current image skipped) that are not cached yet."""
    plan: list[T] = []
    if current is not None and not cached(current):
        plan.append(current)
    seen = {current}
    ahead = 0
    for item in upcoming:
        if ahead >= limit:
            break
        if item is None or item in seen:
            continue
        seen.add(item)
        ahead += 1  # a cached neighbour still counts: the plan looks `limit` images ahead, no further
        if not cached(item):
            plan.append(item)
    return plan
