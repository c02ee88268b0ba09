"""The click model (ml.click_model*), its ``learned`` engine and `segstudio train --click-model`."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segstudio.core.errors import CheckpointError  # noqa: E402
from segstudio.core.interactive import ClickSession, create_engine  # noqa: E402
from segstudio.core.interactive.robot import object_clicks  # noqa: E402
from segstudio.core.interactive.wand import magic_wand  # noqa: E402
from segstudio.ml.click_evidence import (  # noqa: E402
    COLOUR_REACH,
    LOW,
    MISNAMED_REACH,
    SegEvidence,
    colour_proposal,
)
from segstudio.ml.click_model import (  # noqa: E402
    CHANNELS,
    CROP,
    FOCUS_MIN,
    OBLONG_CROPS,
    SEG,
    ClickNet,
    ClickPredictor,
    crop_window,
    encode,
    focus_window,
    load_click_model,
    save_click_model,
)
from segstudio.ml.click_model_train import ClickTrainConfig, ObjectBank, train_click_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("forget_learned_engine")


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
    x = torch.rand(2, CHANNELS, CROP, CROP)
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
    assert x.shape == (CHANNELS, CROP, CROP) and x[3].max() == 1 and x[4].max() == 0 and x[5].max() > 0.9
    assert not x[SEG].any()  # no segmentation evidence given: the channel is zero


def test_a_long_thin_object_gets_an_oblong_crop_when_the_model_allows_it():
    """A pavement-like strip across the frame: a square crop makes it a few crop pixels tall; with
    max_aspect 3 the crop keeps three times the resolution across the strip, and the whole strip
    (grown by the margin) is still inside; the square window is what max_aspect 1 gives."""
    prev = np.zeros((360, 480), bool)
    prev[250:280, 20:460] = True
    square = crop_window(prev.shape, [(240.0, 265.0)], prev)
    oblong = crop_window(prev.shape, [(240.0, 265.0)], prev, max_aspect=3.0)
    assert square.scale_y is None and oblong.scale == square.scale
    assert oblong.sy == oblong.scale / 3  # three times finer down
    for window in (square, oblong):
        (u0, v0), (u1, v1) = window.point(20, 250), window.point(459, 279)
        assert 0 < u0 < u1 < CROP and 0 < v0 < v1 < CROP
    assert (oblong.point(0, 279)[1] - oblong.point(0, 250)[1]) >= 2.9 * (
        square.point(0, 279)[1] - square.point(0, 250)[1]
    )
    # the affine map and point() agree
    m = oblong.to_crop()
    assert np.allclose(m @ np.array([100.0, 260.0, 1.0]), oblong.point(100.0, 260.0))
    # a model trained with oblong crops says so in its info, and its predictor uses them
    assert ClickPredictor.from_info(ClickNet(), {"max_aspect": 3.0}).max_aspect == 3.0
    assert ClickPredictor.from_info(ClickNet(), {}).max_aspect == 1.0


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


def _strip() -> np.ndarray:
    """A pavement-like strip across a 480 x 360 frame: its whole-object window is ~6 px per crop px."""
    prev = np.zeros((360, 480), bool)
    prev[100:300, 20:460] = True
    return prev


def test_a_corrective_click_near_the_boundary_gets_a_local_focus_window():
    prev = _strip()
    clicks = [(240.0, 200.0), (240.0, 104.0)]
    whole = crop_window(prev.shape, clicks, prev, max_aspect=OBLONG_CROPS)
    local = focus_window(whole, (240.0, 104.0, False), prev)  # 5 px inside the top edge
    side = local.scale * CROP
    assert side == pytest.approx(FOCUS_MIN * 480)  # 8 x 5 px is under the least side
    assert local.x0 < 240 < local.x0 + side and local.y0 < 104 < local.y0 + side
    assert side < 0.2 * min(whole.scale, whole.sy) * CROP
    # a positive click 20 px above the strip: a window 8 x 20 px across; 30 px above: too far for one
    above = focus_window(whole, (240.0, 80.0, True), prev)
    assert above.scale * CROP == pytest.approx(8 * 20, rel=0.05)
    assert focus_window(whole, (240.0, 70.0, True), prev) is None
    # a click deep inside the object is not a boundary fix; nor is a click with nothing to refine
    assert focus_window(whole, (240.0, 200.0, False), prev) is None
    assert focus_window(whole, (240.0, 104.0, False), np.zeros_like(prev)) is None


def test_a_focus_model_refines_its_answer_around_the_latest_click(one_torch_thread):
    """FocalClick's two passes: the whole-object answer, then that answer refined in the focus window
    centred on the latest click. Only for a focus model, and only when it knows which click was last."""
    net = ClickNet(width=4).eval()
    calls = []
    real = net.delta
    net.delta = lambda x: calls.append(x.clone()) or real(x)  # type: ignore[method-assign]
    prev = _strip()
    image = np.full((*prev.shape, 3), 100, np.uint8)
    args = (image, [(240.0, 200.0)], [(240.0, 104.0)], prev)
    focused = ClickPredictor(net, guided=False, max_aspect=OBLONG_CROPS, focus=True)
    answer = focused.predict(*args, latest=(240.0, 104.0, False))
    assert len(calls) == 2
    negative = calls[1][0, 4]  # the second pass: the negative click's disc at the crop's centre
    ys, xs = np.nonzero(negative.numpy())
    assert abs(xs.mean() - CROP / 2) <= 1 and abs(ys.mean() - CROP / 2) <= 1
    assert np.array_equal(answer, prev)  # an untrained head keeps the previous mask in both passes
    calls.clear()
    focused.predict(*args)  # a replay: which click came last is unknown
    ClickPredictor(net, guided=False, max_aspect=OBLONG_CROPS).predict(*args, latest=(240.0, 104.0, False))
    assert len(calls) == 2  # one pass each


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


def _probabilities(mask: np.ndarray, classes: int = 4, sure: float = 0.9) -> np.ndarray:
    """Class probabilities of a model that calls every pixel its `mask` class with `sure` confidence."""
    probs = np.full((classes, *mask.shape), (1 - sure) / (classes - 1), np.float32)
    for c in range(classes):
        probs[c][mask == c] = sure
    return probs


def test_seg_evidence_channel_is_cropped_like_the_image():
    shape = (360, 480)
    plane = np.zeros(shape, np.float32)
    plane[100:140, 200:260] = 1.0  # p(class) = 1 on a rectangle, 0 elsewhere
    prev = plane > 0
    window = crop_window(shape, [(230.0, 120.0)], prev)
    x = encode(np.zeros((*shape, 3), np.uint8), [(230.0, 120.0)], [], prev, window, plane)
    u0, v0 = window.point(200, 100)
    u1, v1 = window.point(259, 139)
    inside = x[SEG][int(v0) + 2 : int(v1) - 1, int(u0) + 2 : int(u1) - 1]
    assert inside.min() > 0.99  # the rectangle lands where the window maps it ...
    outside = x[SEG].copy()
    outside[int(v0) - 1 : int(v1) + 2, int(u0) - 1 : int(u1) + 2] = 0
    assert outside.max() < 0.01  # ... and nowhere else
    assert np.allclose(x[SEG], x[5], atol=1e-5)  # the same resampling as the previous-mask channel


def test_first_click_proposal_picks_the_clicked_component():
    mask = np.zeros((100, 140), np.uint8)
    mask[10:40, 10:50] = 1  # two separate objects the model calls class 1
    mask[60:90, 80:130] = 1
    probs = _probabilities(mask, sure=0.9)
    probs[1][10:40, 60:75] = 0.4  # a strip the model calls 0 but with some p(1) >= LOW
    probs[0][10:40, 60:75] = 0.6
    evidence = SegEvidence(probs)
    first = evidence.proposal(1, 20, 20)
    assert first.sum() == 30 * 40 and first[20, 20] and not first[70, 100]  # only the clicked part
    assert evidence.proposal(1, 100, 70).sum() == 30 * 50
    strip = evidence.proposal(1, 65, 20)  # the model missed the click's pixel: p(1) >= LOW part
    assert LOW <= 0.4 and strip[20, 65] and strip.sum() == 30 * 15
    assert not evidence.proposal(1, 130, 5).any()  # no evidence at all: no proposal
    assert not evidence.proposal(7, 20, 20).any()  # a class the model does not know
    assert evidence.plane(7).shape == mask.shape and not evidence.plane(7).any()


def test_untrained_model_returns_its_prior_the_segmentation_proposal(one_torch_thread):
    image, mask = _scene()
    evidence = SegEvidence(_probabilities(mask))
    predictor = ClickPredictor(ClickNet(), guided=False)  # the network's own answer, unfiltered
    obj = mask == 1
    ys, xs = np.nonzero(obj)
    click = [(float(xs.mean()), float(ys.mean()))]
    first = predictor.predict(image, click, [], np.zeros_like(obj), evidence, active_class=1)
    assert np.array_equal(first, obj)  # exactly the model's object, at the frame's resolution
    # the guided filter keeps a boundary that lies on the image's edges (it only rounds the corners)
    guided = ClickPredictor(ClickNet()).predict(image, click, [], np.zeros_like(obj), evidence, 1)
    assert np.count_nonzero(guided ^ obj) <= 0.05 * obj.sum() and not (guided & ~obj).any()
    # a later click starts from the previous answer, unchanged by an untrained head ...
    prev = (mask == 2) | obj
    later = predictor.predict(image, click, [(5.0, 5.0)], prev, evidence, active_class=1)
    assert np.array_equal(later, prev)
    # ... and a positive click the previous answer left out adds that click's proposal
    grown = predictor.predict(image, click, [(5.0, 5.0)], mask == 2, evidence, active_class=1)
    assert np.array_equal(grown, prev)
    once = ClickPredictor(ClickNet(), per_click=False, guided=False)  # the earlier rule: the first click only
    assert np.array_equal(once.predict(image, click, [(5.0, 5.0)], mask == 2, evidence, 1), mask == 2)
    # without the proposal (ablation), the first click starts from nothing
    bare = ClickPredictor(ClickNet(), proposal=False, guided=False)
    assert not bare.predict(image, click, [], np.zeros_like(obj), evidence, active_class=1).any()


def test_where_the_model_disagrees_the_first_click_starts_from_the_colour_region(one_torch_thread):
    """A click on an object the model calls another class (the user correcting a pre-annotation): no
    proposal of the clicked class, so the untrained network returns the colour region around the click
    (its prior), bounded by COLOUR_REACH; the ablation without the fallback returns nothing."""
    image, mask = _scene()
    wrong = np.where(mask == 1, 2, mask)  # the model calls the red rectangle class 2 (sure)
    evidence = SegEvidence(_probabilities(wrong))
    obj = mask == 1
    ys, xs = np.nonzero(obj)
    click = [(float(xs.mean()), float(ys.mean()))]
    assert not evidence.proposal(1, *click[0]).any()
    region = ClickPredictor(ClickNet()).predict(image, click, [], np.zeros_like(obj), evidence, 1)
    yy, xx = np.mgrid[: obj.shape[0], : obj.shape[1]]
    near = np.hypot(xx - click[0][0], yy - click[0][1]) <= COLOUR_REACH * max(obj.shape)
    # the flat red rectangle, as far as the reach goes (the closing may round a corner or a pixel step)
    assert np.count_nonzero(region ^ (obj & near)) <= 0.02 * near.sum()
    off = ClickPredictor(ClickNet(), colour_fallback=False)
    assert not off.predict(image, click, [], np.zeros_like(obj), evidence, 1).any()
    # a flat frame: the colour region stops COLOUR_REACH of the long side from the click
    flat = np.full((120, 160, 3), 90, np.uint8)
    big = colour_proposal(flat, 80.0, 60.0)
    # a textured object: the wand's specks and holes are closed into one region around the click
    rng = np.random.default_rng(0)
    jacket = np.full((120, 160, 3), 200, np.uint8)
    jacket[30:90, 40:120] = rng.choice([60, 90], size=(60, 80, 1)).astype(np.uint8)  # dark, speckled
    worn = colour_proposal(jacket, 80.0, 60.0)
    yy, xx = np.mgrid[:120, :160]
    inside = (np.hypot(xx - 80, yy - 60) <= COLOUR_REACH * 160 - 2) & (yy >= 30) & (yy < 90)
    assert worn[inside].mean() > 0.9 and not worn[:25].any()
    assert magic_wand(jacket, 80.0, 60.0)[inside].mean() < 0.7  # the wand alone: specks and holes
    ys, xs = np.nonzero(big)
    assert big[60, 80] and np.hypot(xs - 80, ys - 60).max() <= COLOUR_REACH * 160
    # a model trained without the fallback says so in its info; from_info honours it
    assert not ClickPredictor.from_info(ClickNet(), {"colour_fallback": False}).colour_fallback
    assert ClickPredictor.from_info(ClickNet(), {}).colour_fallback


def test_where_the_model_misnames_an_object_its_segment_is_the_start(one_torch_thread):
    """A click on an object the model found but called another class: a model trained with `misnamed`
    starts from the model's segment under the click (within MISNAMED_REACH), not the colour region;
    another region of the same wrong class that does not touch it is not taken."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)  # noisy colours: the wand finds specks
    mask = np.zeros((120, 160), np.uint8)
    mask[20:60, 20:70] = 1  # the object clicked (class 1) ...
    mask[70:110, 100:150] = 2  # ... and a real class-2 object apart from it
    wrong = np.where(mask == 1, 2, mask)  # the model calls both class 2
    evidence = SegEvidence(_probabilities(wrong))
    obj = mask == 1
    click = [(45.0, 40.0)]
    assert not evidence.proposal(1, *click[0]).any()
    segment = evidence.misnamed(*click[0])
    yy, xx = np.mgrid[:120, :160]
    near = np.hypot(xx - 45.0, yy - 40.0) <= MISNAMED_REACH * 160
    assert np.array_equal(segment, obj & near) and not (segment & (mask == 2)).any()
    trained_so = ClickPredictor.from_info(ClickNet(), {"misnamed": True}, guided=False)
    region = trained_so.predict(image, click, [], np.zeros_like(obj), evidence, 1)
    assert np.array_equal(region, segment)  # the untrained network returns its start
    colour = ClickPredictor(ClickNet(), guided=False).predict(
        image, click, [], np.zeros_like(obj), evidence, 1
    )
    assert np.count_nonzero(colour & obj) < 0.2 * np.count_nonzero(region & obj)
    assert not ClickPredictor.from_info(ClickNet(), {}).misnamed  # older models keep the colour start


def test_a_few_training_steps_with_segmentation_evidence(tmp_path, one_torch_thread):
    image, mask = _scene(1)
    rough = _probabilities(np.where(mask == 255, 0, mask), sure=0.7)
    bank = ObjectBank([(image, mask)], min_object=0.01, probabilities=[rough])
    assert bank.has_evidence and {c for _, c, _ in bank.objects} >= {1, 2, 3}
    config = ClickTrainConfig(steps=6, batch=2, max_iters=1, width=4, seed=0)
    _, result = train_click_model(bank, tmp_path / "click_model.pt", config)
    assert result.steps == 6 and np.isfinite(result.losses).all()
    _, info = load_click_model(result.path)
    assert info["seg_evidence"] is True and info["proposal"] is True and info["colour_fallback"] is True
    # new models start a click the model disagrees with from its segment there, and say so
    assert info["misnamed"] is True and ClickPredictor.from_info(ClickNet(), info).misnamed
    # new models train on oblong crops, and their predictor uses the same windows
    assert info["max_aspect"] == OBLONG_CROPS > 1
    model, info = load_click_model(result.path)
    assert ClickPredictor.from_info(model, info).max_aspect == OBLONG_CROPS


def test_a_focus_model_trains_its_refining_pass_and_says_so(tmp_path, one_torch_thread, monkeypatch):
    from segstudio.ml import click_model_train

    strip = _strip()
    mask = strip.astype(np.uint8)
    image = np.where(strip[..., None], 180, 60).astype(np.uint8).repeat(3, axis=2)
    seen = mask.copy()
    seen[100:104] = 0  # the segmentation model misses a 4 px band along the strip's top edge
    bank = ObjectBank([(image, mask)], min_object=0.01, probabilities=[_probabilities(seen, classes=2)])
    refined = []
    real = click_model_train._refine_inputs
    monkeypatch.setattr(click_model_train, "_refine_inputs", lambda *a: refined.append(a[3]) or real(*a))
    config = ClickTrainConfig(steps=8, batch=4, max_iters=3, width=4, seed=0, focus=True)
    _, result = train_click_model(bank, tmp_path / "click_model.pt", config)
    assert result.steps == 8 and np.isfinite(result.losses).all()
    assert refined  # corrective clicks by the boundary went through the second pass
    assert all(w.scale * CROP <= 0.5 * 360 for w in refined)
    model, info = load_click_model(result.path)
    assert info["focus"] is True and ClickPredictor.from_info(model, info).focus
    assert not ClickPredictor.from_info(model, {}).focus  # older models answer in one pass


def test_an_earlier_format_click_model_is_refused_with_a_clear_message(tmp_path):
    torch.save({"format": "segstudio-click-model-1", "width": 16, "state": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="earlier format"):
        load_click_model(tmp_path / "old.pt")


def _checkpoint_pair(folder, classes: int = 4):
    """A version folder as training leaves it: best.pt (LR-ASPP, random weights) + click_model.pt."""
    from segstudio.core.schemes import ClassDef, LabelScheme
    from segstudio.ml.click_model_files import CLICK_MODEL_NAME
    from segstudio.ml.models import build_model
    from segstudio.ml.weights import save_checkpoint

    arch = "lraspp_mobilenet_v3_large"
    scheme = LabelScheme("t", tuple(ClassDef(f"c{i}", (i * 40, 0, 0)) for i in range(classes)))
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "best.pt", build_model(arch, classes, aux_loss=False), arch, scheme)
    return save_click_model(folder / CLICK_MODEL_NAME, ClickNet(width=4))


def test_learned_engine_through_the_engine_interface(tmp_path, one_torch_thread):
    from segstudio.ml.click_engine import use_click_model

    path = _checkpoint_pair(tmp_path / "v1")
    use_click_model(path)
    image, mask = _scene()
    engine = create_engine("learned")
    engine.prepare(image)  # runs the version's best.pt once: the frame's segmentation evidence
    assert engine.ready and engine.evidence.probs.shape == (4, *mask.shape)
    obj = mask == 1
    ys, xs = np.nonzero(obj)
    session = ClickSession(engine, active_class=1)
    region = session.click(float(xs.mean()), float(ys.mean()))
    assert region.shape == obj.shape and region.any()  # the click's own disc at least
    assert region[int(ys.mean()), int(xs.mean())]
    # untrained click head: the first answer is the random segmentation model's proposal (+ the disc)
    proposal = engine.evidence.proposal(1, float(xs.mean()), float(ys.mean()))
    assert np.count_nonzero(region & ~proposal) <= 60
    # a negative click is honoured; undo gives back the earlier answer (remembered per prompt list)
    before = region.copy()
    after = session.click(float(xs.mean()) + 10, float(ys.mean()), positive=False)
    assert not after[int(ys.mean()), int(xs.mean()) + 10]
    assert np.array_equal(session.undo_prompt(), before)
    # labels of another class act as a barrier: the region never takes finished work of class 2
    labels = np.where(mask == 2, 2, 255).astype(np.uint8)
    session = ClickSession(engine, 1, labels)
    assert not (session.click(float(xs.mean()), float(ys.mean())) & (mask == 2)).any()
    assert len(object_clicks(engine, obj, 1, max_clicks=3)) >= 1
    # the caller's probabilities (a prediction by the same model) are used instead of running it
    given = create_engine("learned")
    given.prepare(image, _probabilities(mask))
    answer = ClickSession(given, 1).click(float(xs.mean()), float(ys.mean()))
    # the object, its corners rounded by the guided filter
    assert np.count_nonzero(answer ^ obj) <= 0.05 * obj.sum()


def test_learned_engine_tells_a_focus_model_which_click_came_last(tmp_path, one_torch_thread, monkeypatch):
    """The local window centres on the latest click; the engine gets its prompts as two lists, so it
    says which one was latest (and whether it was positive), through undo too."""
    from segstudio.ml.click_engine import use_click_model
    from segstudio.ml.click_model_files import CLICK_MODEL_NAME

    _checkpoint_pair(tmp_path / "v1")
    path = save_click_model(tmp_path / "v1" / CLICK_MODEL_NAME, ClickNet(width=4), {"focus": True})
    use_click_model(path)
    seen = []
    real = ClickPredictor.predict

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("latest", args[6] if len(args) > 6 else None))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ClickPredictor, "predict", spy)
    image, mask = _scene()
    engine = create_engine("learned")
    engine.prepare(image, _probabilities(mask))
    assert engine.predictor.focus
    session = ClickSession(engine, active_class=1)
    session.click(30.0, 40.0)
    session.click(35.0, 42.0, positive=False)
    session.click(50.0, 20.0)
    assert seen == [None, (35.0, 42.0, False), (50.0, 20.0, True)]
    session.undo_prompt()
    session.click(31.0, 41.0, positive=False)
    assert seen[-1] == (31.0, 41.0, False)


def test_learned_engine_without_its_segmentation_model_says_what_to_do(tmp_path, one_torch_thread):
    from segstudio.core.errors import UsageError
    from segstudio.ml.click_engine import use_click_model

    path = save_click_model(tmp_path / "click_model.pt", ClickNet(width=4))
    use_click_model(path)
    with pytest.raises(UsageError, match="needs its version's segmentation model"):
        create_engine("learned").prepare(_scene()[0])


def test_paste_logits_with_the_frame_as_guide_puts_the_boundary_on_the_image_edge():
    """The previous mask 3 px off the object's edge (the crop's coarse boundary): guided by the frame,
    the pasted answer moves onto the edge; without the guide it keeps the offset."""
    from segstudio.ml.click_model import paste_logits

    rng = np.random.default_rng(0)
    image = rng.integers(30, 70, (360, 480, 3), dtype=np.uint8)  # dark, textured background
    image[100:220, 150:330] = 210  # a bright object
    obj = np.zeros((360, 480), bool)
    obj[100:220, 150:330] = True
    ys, xs = np.nonzero(obj)
    off = np.zeros_like(obj)
    off[ys.min() + 3 : ys.max() + 4, xs.min() + 3 : xs.max() + 4] = True  # shifted down-right by 3
    window = crop_window(obj.shape, [(float(xs.mean()), float(ys.mean()))], off)
    zero = np.zeros((CROP, CROP), np.float32)
    raw = paste_logits(zero, 1.0, off, window)
    guided = paste_logits(zero, 1.0, off, window, image)
    assert np.array_equal(raw, off)
    assert np.count_nonzero(guided ^ obj) < np.count_nonzero(off ^ obj) / 3
