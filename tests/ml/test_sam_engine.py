"""The SAM engine's plumbing with randomly initialised weights (never a download): checkpoint
loading with weights_only, size detection, clear errors, embedding cache, prompts -> mask."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

pytest.importorskip("segment_anything")
from segstudio.core.errors import CancelledError, CheckpointError, UsageError
from segstudio.core.interactive import Prompts, create_engine
from segstudio.ml import sam_engine


@pytest.fixture
def checkpoint(tiny_sam_checkpoint):
    return tiny_sam_checkpoint


def test_sam_engine_plumbing(checkpoint):
    runtime = sam_engine.use_sam_checkpoint(checkpoint)
    engine = create_engine("sam")
    assert engine.runtime is runtime
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    engine.prepare(image)
    assert runtime.computed == 1
    t0 = time.perf_counter()
    region = engine.region(Prompts(positives=[(80, 60)]), 1)
    decode = time.perf_counter() - t0
    assert region.shape == (120, 160) and region.dtype == bool and region[60, 80]
    box_region = engine.region(Prompts(box=(10, 10, 100, 90), negatives=[(50, 50)]), 1)
    assert box_region.shape == (120, 160) and not box_region[50, 50]
    other = rng.integers(0, 255, (90, 100, 3), dtype=np.uint8)
    runtime.embed(("other.jpg", "v1"), other)  # what the inference worker does ahead of the user
    assert runtime.computed == 2
    second = create_engine("sam")
    second.attach(other, runtime.cache.get(("other.jpg", "v1")))
    assert second.region(Prompts(positives=[(50, 40)]), 1).shape == (90, 100)
    engine.prepare(image)  # cached by content: no new embedding
    assert runtime.computed == 2
    assert engine.region(Prompts(scribbles=[[(20, 20), (60, 40), (90, 80)]]), 1).shape == (120, 160)
    assert decode < 5.0  # prompt decoding only; the target latency is measured in bench/, not here


def test_an_embedding_stops_when_asked_and_leaves_nothing_behind(checkpoint):
    runtime = sam_engine.use_sam_checkpoint(checkpoint)
    image = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    asked = []
    with pytest.raises(CancelledError, match="cancelled"):
        runtime.embed(("a.jpg", "v"), image, should_stop=lambda: asked.append(1) or True)
    assert asked and runtime.computed == 0 and len(runtime.cache) == 0
    runtime.embed(("a.jpg", "v"), image, should_stop=lambda: False)  # the hooks were removed: it works
    assert runtime.computed == 1 and ("a.jpg", "v") in runtime.cache
    assert not any(block._forward_pre_hooks for block in runtime.model.image_encoder.blocks)


def test_a_click_without_an_embedding_is_a_clear_error(checkpoint):
    sam_engine.use_sam_checkpoint(checkpoint)
    engine = create_engine("sam")
    engine.image = np.zeros((10, 10, 3), np.uint8)  # an image but no embedding
    with pytest.raises(UsageError, match="no image embedding"):
        engine.region(Prompts(positives=[(5, 5)]), 1)


def test_sam_checkpoint_errors(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="does not exist"):
        sam_engine.load_sam(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a SAM checkpoint"):
        sam_engine.load_sam(bad)
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="no SAM image encoder"):
        sam_engine.load_sam(other)
    state = torch.load(checkpoint, weights_only=True)
    state["image_encoder.pos_embed"] = torch.zeros(1, 64, 64, 96)
    torch.save(state, other)
    with pytest.raises(CheckpointError, match="unknown SAM encoder width 96"):
        sam_engine.load_sam(other)


def test_a_sam_file_built_to_exhaust_memory_is_refused_before_loading(tmp_path):
    """The checkpoints' archive check with SAM's bound: a small state dict whose tensor data inflates
    to 256 MiB is refused without inflating it."""
    import tracemalloc

    from bench.hostile_files import deflate_bomb

    torch.save({"image_encoder.pos_embed": torch.zeros(1, 4, 4, 768)}, tmp_path / "plain.pth")
    deflate_bomb(tmp_path / "plain.pth", tmp_path / "bomb.pth", 256 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"bomb\.pth.*inflates"):
            sam_engine.load_sam(tmp_path / "bomb.pth")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak
