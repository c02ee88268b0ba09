"""One "hash a key to pick a split or an order" helper (core.hashing.stable_fraction), used by all four places."""

from __future__ import annotations

from segstudio.core.hashing import stable_fraction
from segstudio.core.store_records import split_for_hash
from segstudio.export.common import assign_split
from segstudio.ml.crf_tune import split_keys

KEYS = [f"{i:032x}" for i in range(4000)] + ["photos/été.jpg", "bad-\udcff-name.png"]


def test_stable_uniform_and_salted():
    values = [stable_fraction(k) for k in KEYS]
    assert values == [stable_fraction(k) for k in KEYS]  # the same on every call (and run)
    assert all(0.0 <= v < 1.0 for v in values)
    assert abs(sum(values) / len(values) - 0.5) < 0.02
    assert abs(sum(v < 0.2 for v in values) / len(values) - 0.2) < 0.02
    salted = [stable_fraction(k, salt="segstudio-val:") for k in KEYS]
    assert sum(a < b for a, b in zip(values, salted)) not in (0, len(KEYS))  # an independent order


def test_every_split_and_order_uses_it():
    for key in KEYS[:500]:
        expected = "val" if stable_fraction(key) < 0.2 else "train"
        assert split_for_hash(key, 0.2) == expected
        assert assign_split("random:0.2", "train", key) == expected
    keys = KEYS[:30]
    tuning, held = split_keys(keys)
    order = sorted(range(len(keys)), key=lambda i: stable_fraction(keys[i]))
    assert held == sorted(order[::3]) and tuning == sorted(set(range(30)) - set(held))
