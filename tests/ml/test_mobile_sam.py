"""MobileSAM (``vit_t``) behind the same ``sam`` engine, with random weights of the real shapes
(a 1024-pixel TinyViT, never a download): told apart from ViT checkpoints by its keys, embeds to
SAM's 256x64x64 features, decodes clicks, cancels between TinyViT blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mobile_sam")
from segstudio.core.errors import CancelledError, CheckpointError
from segstudio.core.interactive import Prompts, create_engine
from segstudio.ml import sam_engine


@pytest.fixture(scope="module")
def mobile_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mobile") / "mobile_sam_random.pt"
    torch.save(sam_engine.build_mobile_sam().state_dict(), path)
    return path


def test_a_mobile_sam_checkpoint_loads_as_vit_t_and_clicks(mobile_checkpoint, one_torch_thread):
    runtime = sam_engine.use_sam_checkpoint(mobile_checkpoint)
    encoder = runtime.model.image_encoder
    assert type(encoder).__name__ == "TinyViT"
    assert 5_000_000 < sum(p.numel() for p in encoder.parameters()) < 7_000_000  # MobileSAM's 5.7M + neck
    engine = create_engine("sam")
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    engine.prepare(image)
    assert engine.embedding.features.shape == (1, 256, 64, 64) and runtime.computed == 1
    region = engine.region(Prompts(positives=[(60, 45)], negatives=[(5, 5)]), 1)
    assert region.shape == (90, 120) and region.dtype == bool


def test_a_mobile_sam_embedding_cancels_between_tinyvit_blocks(mobile_checkpoint, one_torch_thread):
    runtime = sam_engine.use_sam_checkpoint(mobile_checkpoint)
    blocks = sam_engine.encoder_blocks(runtime.model.image_encoder)
    assert len(blocks) == 12  # 2 MBConv + 2 + 6 + 2 TinyViT blocks: a stop point at each
    with pytest.raises(CancelledError):
        runtime.embed(("a.jpg", "v"), np.zeros((32, 32, 3), np.uint8), should_stop=lambda: True)
    assert runtime.computed == 0 and not any(b._forward_pre_hooks for b in blocks)


def test_a_mobile_sam_checkpoint_with_wrong_shapes_is_a_clear_error(mobile_checkpoint, tmp_path):
    state = torch.load(mobile_checkpoint, weights_only=True)
    state[sam_engine.MOBILE_SAM_KEY] = torch.zeros(3, 3, 3, 3)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="does not fit SAM vit_t"):
        sam_engine.load_sam(bad)
