"""The click model (ml.click_model*), its ``learned`` engine and `segstudio train --click-model`."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segstudio.core.errors import CheckpointError  # noqa: E402
from segstudio.core.interactive import ClickSession, create_engine  # noqa: E402
from segstudio.core.interactive.robot import object_clicks  # noqa: E402
from segstudio.ml.click_model import (  # noqa: E402
    CROP,
    ClickNet,
    ClickPredictor,
    crop_window,
    encode,
    load_click_model,
    save_click_model,
)
from segstudio.ml.click_model_train import ClickTrainConfig, ObjectBank, train_click_model  # noqa: E402


@pytest.fixture(autouse=True)
def _forget_learned_engine():
    """`use_click_model` registers "learned" process-wide with a tmp file: unregister it afterwards."""
    from segstudio.core.interactive.engines import ENGINES

    yield
    ENGINES.pop("learned", None)


def _scene(seed: int = 0, shape: tuple[int, int] = (120, 160)) -> tuple[np.ndarray, np.ndarray]:
    """A textured background with two coloured rectangles and a disc (classes 1, 2, 3; 0 = ground)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    image = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
    mask = np.zeros(shape, np.uint8)
    for c, colour in ((1, (220, 40, 40)), (2, (40, 200, 60))):
        y0, x0 = rng.integers(5, h // 2), rng.integers(5, w // 2)
        y1, x1 = y0 + rng.integers(20, h // 2), x0 + rng.integers(25, w // 2)
        image[y0:y1, x0:x1] = colour
        mask[y0:y1, x0:x1] = c
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h * 0.7) ** 2 + (xx - w * 0.75) ** 2 < (min(h, w) * 0.15) ** 2
    image[disc] = (40, 60, 230)
    mask[disc] = 3
    return image, mask


def test_shapes_and_untrained_model_returns_the_previous_mask(one_torch_thread):
    net = ClickNet().eval()
    x = torch.rand(2, 6, CROP, CROP)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 1, CROP, CROP)
    image, mask = _scene()
    prev = mask == 1
    predictor = ClickPredictor(net)
    ys, xs = np.nonzero(prev)
    region = predictor.predict(image, [(float(xs[0]), float(ys[0]))], [(5.0, 5.0)], prev)
    assert region.shape == prev.shape and region.dtype == bool
    # zero-initialised head: the output is the previous mask (up to resampling at its border)
    assert np.count_nonzero(region != prev) <= 0.1 * prev.sum()
    # no previous mask: an untrained model proposes nothing (the engine adds the click's disc)
    empty = predictor.predict(image, [(80.0, 60.0)], [], np.zeros_like(prev))
    assert not empty.any()


def test_crop_window_zooms_to_the_mask_and_clicks():
    prev = np.zeros((360, 480), bool)
    prev[100:140, 200:260] = True
    window = crop_window(prev.shape, [(230.0, 120.0)], prev)
    u0, v0 = window.point(200, 100)
    u1, v1 = window.point(259, 139)
    assert 0 < u0 < u1 < CROP and 0 < v0 < v1 < CROP  # the object is inside, with a margin
    first = crop_window(prev.shape, [(10.0, 10.0)], None)
    assert first.scale * CROP >= 0.3 * 480  # a first click sees its surroundings
    x = encode(np.zeros((360, 480, 3), np.uint8), [(230.0, 120.0)], [], prev, window)
    assert x.shape == (6, CROP, CROP) and x[3].max() == 1 and x[4].max() == 0 and x[5].max() > 0.9


def test_a_few_training_steps_lower_the_loss_and_save_a_loadable_model(tmp_path, one_torch_thread):
    image, mask = _scene(0)
    bank = ObjectBank([(image, np.where(mask == 1, 1, 255).astype(np.uint8))], min_object=0.01)
    assert len(bank.objects) == 1
    # tiny network, one simulated corrective round: a few seconds on a shared CPU
    config = ClickTrainConfig(steps=30, batch=4, lr=3e-2, max_iters=1, width=4, seed=0)
    model, result = train_click_model(bank, tmp_path / "click_model.pt", config)
    assert result.steps == 30 and result.path is not None
    assert np.mean(result.losses[-4:]) < 0.7 * np.mean(result.losses[:3]), result.losses
    loaded, info = load_click_model(result.path)
    assert info["steps"] == 30 and info["train_images"] == 1
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_file_that_is_not_a_click_model_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable click model"):
        load_click_model(bad)
    torch.save({"format": "other"}, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="not a SegStudio click model"):
        load_click_model(tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_click_model(tmp_path / "missing.pt")


def test_learned_engine_through_the_engine_interface(tmp_path, one_torch_thread):
    from segstudio.ml.click_engine import use_click_model

    path = save_click_model(tmp_path / "click_model.pt", ClickNet())
    use_click_model(path)
    image, mask = _scene()
    engine = create_engine("learned")
    engine.prepare(image)
    assert engine.ready
    obj = mask == 1
    ys, xs = np.nonzero(obj)
    session = ClickSession(engine, active_class=1)
    region = session.click(float(xs.mean()), float(ys.mean()))
    assert region.shape == obj.shape and region.any()  # the click's own disc at least
    assert region[int(ys.mean()), int(xs.mean())]
    # a negative click is honoured; undo gives back the earlier answer (remembered per prompt list)
    before = region.copy()
    after = session.click(float(xs.mean()) + 10, float(ys.mean()), positive=False)
    assert not after[int(ys.mean()), int(xs.mean()) + 10]
    assert np.array_equal(session.undo_prompt(), before)
    # labels of another class act as a barrier: the region never takes finished work of class 2
    labels = np.where(mask == 2, 2, 255).astype(np.uint8)
    session = ClickSession(engine, 1, labels)
    assert not (session.click(float(xs.mean()), float(ys.mean())) & (mask == 2)).any()
    assert len(object_clicks(engine, obj, 1, max_clicks=3)) == 3
