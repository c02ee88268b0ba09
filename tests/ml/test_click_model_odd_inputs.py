"""The click model's pipeline against odd or hostile inputs a stranger's project can hold: tiny and
elongated frames, frames of the wrong kind, masks that do not fit, broken segmentation evidence, long
prompt lists and damaged click model files. Each is a typed SegStudioError naming the problem (the GUI
shows it and keeps its other tools) or a correct answer, never a raw traceback or a silent wrong result."""

from __future__ import annotations

import os
import pickle
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from bench.hostile_files import deflate_bomb  # noqa: E402
from segstudio.core.errors import CheckpointError, MaskError, UsageError  # noqa: E402
from segstudio.core.interactive import ClickSession, create_engine  # noqa: E402
from segstudio.core.interactive.prompts import Prompts  # noqa: E402
from segstudio.ml.click_evidence import SegEvidence  # noqa: E402
from segstudio.ml.click_model import (  # noqa: E402
    MAX_CLICK_MODEL_BYTES,
    ClickNet,
    ClickPredictor,
    load_click_model,
    save_click_model,
)
from segstudio.ml.click_model_train import ClickTrainConfig, ObjectBank, train_click_model  # noqa: E402
from segstudio.ml.train_config import TrainingError  # noqa: E402

pytestmark = pytest.mark.usefixtures("forget_learned_engine")


def _frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _halves(h: int, w: int) -> np.ndarray:
    """Class 0 on the left, class 1 on the right (a 1-pixel-wide frame: class 0 only)."""
    mask = np.zeros((h, w), np.uint8)
    mask[:, w // 2 :] = 1
    return mask


def _sure(mask: np.ndarray, classes: int = 3) -> np.ndarray:
    probs = np.full((classes, *mask.shape), 0.1, np.float32)
    for c in range(classes):
        probs[c][mask == c] = 0.8
    return probs


def _learned(tmp_path, h: int, w: int, info: dict | None = None):
    """The learned engine on a random h x w frame with a tiny untrained click model and given evidence."""
    from segstudio.ml.click_engine import use_click_model

    use_click_model(save_click_model(tmp_path / "click_model.pt", ClickNet(width=4), info))
    engine = create_engine("learned")
    engine.prepare(_frame(h, w), _sure(_halves(h, w)))
    return engine


# -- inference ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 200), (200, 7)])
def test_tiny_and_elongated_frames_answer_clicks_on_edges_corners_and_outside(
    tmp_path, one_torch_thread, shape
):
    h, w = shape
    engine = _learned(tmp_path, h, w, {"focus": True, "max_aspect": 3.0})
    session = ClickSession(engine, active_class=1)
    region = session.click(w - 1.0, 0.0)  # the top right corner
    assert region.shape == (h, w) and region.dtype == bool and region[0, w - 1]
    region = session.click(-5.0, h + 3.0, positive=False)  # outside the frame: clamped, no crash
    assert region.shape == (h, w) and region[0, w - 1]
    for i in range(30):  # many clicks, duplicates among them
        region = session.click(float(i % w), float(i % h), positive=i % 3 != 0)
    assert region.shape == (h, w) and region.dtype == bool
    only_negative = ClickSession(engine, active_class=1).click(w / 2, h / 2, positive=False)
    assert not only_negative.any()


@pytest.mark.parametrize(
    ("image", "named"),
    [
        (_frame(20, 30)[..., 0], r"\(20, 30\) uint8"),  # grey: would be cut to its first 3 columns
        (_frame(20, 30).astype(np.uint16) * 257, "uint16"),  # 16-bit: would be mis-scaled silently
        (_frame(20, 30).astype(np.float32) / 255, "float32"),
        (_frame(20, 30)[..., :1], r"\(20, 30, 1\)"),
    ],
)
def test_predict_refuses_a_frame_it_would_misread(one_torch_thread, image, named):
    predictor = ClickPredictor(ClickNet(width=4))
    with pytest.raises(UsageError, match=f"needs an H x W x 3 uint8 RGB image, got shape .*{named}"):
        predictor.predict(image, [(10.0, 10.0)], [], np.zeros((20, 30), bool))


def test_predict_takes_rgba_as_its_rgb_and_refuses_masks_of_another_size(one_torch_thread):
    predictor = ClickPredictor(ClickNet(width=4))
    rgb, prev = _frame(20, 30), _halves(20, 30).astype(bool)
    rgba = np.dstack([rgb, np.full((20, 30), 7, np.uint8)])
    args = ([(25.0, 10.0)], [(2.0, 2.0)], prev)
    assert np.array_equal(predictor.predict(rgba, *args), predictor.predict(rgb, *args))
    with pytest.raises(UsageError, match=r"previous mask is \(10, 15\), its image \(20, 30\)"):
        predictor.predict(rgb, [(25.0, 10.0)], [], prev[::2, ::2])
    seg = SegEvidence(_sure(_halves(10, 15)))
    with pytest.raises(UsageError, match=r"segmentation evidence is \(10, 15\), its image \(20, 30\)"):
        predictor.predict(rgb, [(25.0, 10.0)], [], prev, seg, 1)


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        (np.full((20, 30), 0.5, np.float32), r"must be C x H x W .* got \(20, 30\)"),
        (np.zeros((0, 20, 30), np.float32), r"at least one class and pixel, got \(0, 20, 30\)"),
        (np.zeros((3, 0, 0), np.float32), r"at least one class and pixel, got \(3, 0, 0\)"),
        (np.full((3, 20, 30), np.nan, np.float32), "contain NaN or infinity"),  # a diverged model
    ],
)
def test_segmentation_evidence_that_cannot_be_used_is_a_usage_error(
    tmp_path, one_torch_thread, probs, message
):
    from segstudio.ml.click_engine import use_click_model

    use_click_model(save_click_model(tmp_path / "click_model.pt", ClickNet(width=4)))
    with pytest.raises(UsageError, match=message):
        create_engine("learned").prepare(_frame(20, 30), probs)


def test_evidence_of_another_size_or_fewer_classes_still_answers(tmp_path, one_torch_thread):
    """Stored probabilities are reduced (resized back), and a class the model lacks has no evidence."""
    from segstudio.ml.click_engine import use_click_model

    use_click_model(save_click_model(tmp_path / "click_model.pt", ClickNet(width=4)))
    engine = create_engine("learned")
    engine.prepare(_frame(20, 30), _sure(_halves(10, 15), classes=2))
    assert engine.evidence.shape == (20, 30)
    region = ClickSession(engine, active_class=7).click(25.0, 10.0)  # class 7: not in the 2 classes
    assert region.shape == (20, 30) and region[10, 25]


def test_a_long_prompt_list_is_replayed_in_order_without_recursion(tmp_path, one_torch_thread, monkeypatch):
    """A prompt list with nothing remembered (a re-prepared image, scribbles) is replayed click by click,
    positives first; 1500 prompts went past Python's recursion limit."""
    engine = _learned(tmp_path, 20, 30)
    calls = []

    def fake_predict(self, image, positives, negatives, prev, seg=None, active_class=0, latest=None):
        calls.append((len(positives), len(negatives), latest))
        return prev.copy()

    monkeypatch.setattr(ClickPredictor, "predict", fake_predict)
    prompts = Prompts()
    prompts.positives = [(float(i % 30), float(i % 20)) for i in range(1000)]
    prompts.negatives = [(float(i % 29), float(i % 19)) for i in range(500)]
    region = ClickSession(engine, active_class=1).update_to(prompts)
    assert region.shape == (20, 30)
    assert len(calls) == 1500  # each prompt list once
    assert calls[0] == (1, 0, None)  # the first click: nothing before it
    assert calls[999] == (1000, 0, (*prompts.positives[-1], True))
    assert calls[-1] == (1000, 500, (*prompts.negatives[-1], False))


def test_a_click_model_file_gone_since_it_was_chosen_is_a_checkpoint_error(tmp_path, one_torch_thread):
    from segstudio.ml.click_engine import use_click_model

    use_click_model(tmp_path / "click_model.pt")
    with pytest.raises(CheckpointError, match=r"cannot read the click model .*click_model\.pt"):
        create_engine("learned").prepare(_frame(20, 30), _sure(_halves(20, 30)))


# -- click model files -------------------------------------------------------------------------------


class _RunsCode:
    """A pickle that runs a command when loaded without weights_only."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload(**changes) -> dict:
    payload = {"format": "segstudio-click-model-2", "width": 4, "state": ClickNet(width=4).state_dict()}
    return {**payload, "info": {}, **changes}


def _nan_state() -> dict:
    state = dict(ClickNet(width=4).state_dict())
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))
    return state


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("truncated", lambda p, good: p.write_bytes(good[: len(good) // 2]), "not a readable click model"),
        ("empty", lambda p, good: p.write_bytes(b""), "not a readable click model"),
        ("directory", lambda p, good: p.mkdir(), "not a readable click model .*Is a directory"),
        ("wider", lambda p, good: torch.save(_payload(width=8), p), "do not fit its width 8"),
        ("huge width", lambda p, good: torch.save(_payload(width=10**6), p), "do not fit its width 1000000"),
        ("negative width", lambda p, good: torch.save(_payload(width=-3), p), "do not fit its width -3"),
        ("no width", lambda p, good: torch.save(_payload(width=None), p), "do not fit its width None"),
        ("no state", lambda p, good: torch.save(_payload(state=[1, 2]), p), "weights are missing"),
        ("nan weights", lambda p, good: torch.save(_payload(state=_nan_state()), p), "NaN or infinity"),
        ("info a list", lambda p, good: torch.save(_payload(info=[1]), p), "info is a list, not a mapping"),
        ("aspect 0", lambda p, good: torch.save(_payload(info={"max_aspect": 0}), p), "'max_aspect' is 0"),
        ("aspect nan", lambda p, good: torch.save(_payload(info={"max_aspect": float("nan")}), p), "is nan"),
        ("flag text", lambda p, good: torch.save(_payload(info={"focus": "no"}), p), "'focus' is 'no'"),
    ],
)
def test_a_damaged_click_model_file_is_a_checkpoint_error_naming_it(tmp_path, name, write, message):
    good = save_click_model(tmp_path / "good.pt", ClickNet(width=4)).read_bytes()
    path = tmp_path / "click_model.pt"
    write(path, good)
    with pytest.raises(CheckpointError, match=f"click_model.pt.*{message}"):
        load_click_model(path)


def test_a_click_model_file_built_to_exhaust_memory_is_refused_before_loading(tmp_path):
    """The checkpoints' archive check (`checkpoint_schema.check_archive`) with a click model's bound:
    a 1 MB file that inflates to 256 MiB, and a plain one declaring more than any click model holds."""
    plain = save_click_model(tmp_path / "plain.pt", ClickNet(width=4))
    deflate_bomb(plain, tmp_path / "bomb.pt", 256 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"bomb\.pt.*inflates"):
            load_click_model(tmp_path / "bomb.pt")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak
    torch.save(_payload(info={"padding": torch.zeros(MAX_CLICK_MODEL_BYTES // 4 + 1)}), tmp_path / "big.pt")
    with pytest.raises(CheckpointError, match=r"big\.pt.*declares 64 MiB"):
        load_click_model(tmp_path / "big.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_click_model_file_with_code_in_it_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    torch.save(_payload(state=_RunsCode(str(marker))), tmp_path / "click_model.pt")
    with pytest.raises(CheckpointError, match="not a readable click model"):
        load_click_model(tmp_path / "click_model.pt")
    (tmp_path / "plain.pt").write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(CheckpointError, match="not a readable click model"):
        load_click_model(tmp_path / "plain.pt")
    assert not marker.exists()


def test_a_crop_aspect_below_one_is_refused_where_it_is_given():
    with pytest.raises(UsageError, match="max_aspect >= 1, got 0"):
        ClickPredictor(ClickNet(width=4), max_aspect=0)
    bank = ObjectBank([(_frame(20, 30), _halves(20, 30))], 0.002)
    with pytest.raises(UsageError, match="max_aspect >= 1, got -1"):
        train_click_model(bank, None, ClickTrainConfig(steps=1, batch=1, width=4, max_aspect=-1))


# -- training ----------------------------------------------------------------------------------------


def test_training_on_tiny_and_elongated_frames(one_torch_thread):
    shapes = [(1, 1), (3, 5), (7, 200), (200, 7)]
    pairs = [(_frame(h, w, i), _halves(h, w)) for i, (h, w) in enumerate(shapes)]
    bank = ObjectBank(pairs, 0.002, [_sure(mask) for _, mask in pairs])
    assert len(bank.objects) == 7  # two halves per frame, one in the 1 x 1 frame
    config = ClickTrainConfig(steps=3, batch=4, width=4, max_iters=2, error_first=1.0, seed=0)
    _, result = train_click_model(bank, None, config)
    assert result.steps == 3 and np.isfinite(result.losses).all()


@pytest.mark.parametrize(
    ("image", "mask", "error", "message"),
    [
        (_frame(20, 30)[..., 0], _halves(20, 30), UsageError, r"training frame 0 needs .*\(20, 30\) uint8"),
        (_frame(20, 30).astype(np.uint16), _halves(20, 30), UsageError, "training frame 0 needs .*uint16"),
        (_frame(20, 30), _halves(40, 60), MaskError, r"its mask is \(40, 60\), its image \(20, 30\)"),
        (_frame(20, 30), np.dstack([_halves(20, 30)] * 3), MaskError, r"its mask is \(20, 30, 3\)"),
    ],
)
def test_the_object_bank_refuses_frames_and_masks_that_do_not_fit(image, mask, error, message):
    with pytest.raises(error, match=message):
        ObjectBank([(image, mask)], 0.002)


def test_the_object_bank_says_why_there_is_nothing_to_train_on():
    with pytest.raises(TrainingError, match=r"no labelled region in 0 done mask\(s\)"):
        ObjectBank([], 0.002)
    with pytest.raises(TrainingError, match=r"no labelled region in 1 done mask\(s\)"):
        ObjectBank([(_frame(20, 30), np.full((20, 30), 255, np.uint8))], 0.002)
    speck = np.full((100, 100), 255, np.uint8)
    speck[50:54, 50:54] = 1  # labelled, but 0.16 % of the frame
    with pytest.raises(TrainingError, match=r"every labelled region .* is smaller than 0.2% of its frame"):
        ObjectBank([(_frame(100, 100), speck)], 0.002)


def test_the_object_bank_reads_files_as_the_segmentation_trainer_does(tmp_path):
    Image.fromarray(_frame(40, 60)).save(tmp_path / "image.png")
    Image.fromarray(_halves(20, 30)).save(tmp_path / "half.png")  # saved for a smaller decode
    Image.fromarray(np.dstack([_halves(40, 60) * 100] * 3)).save(tmp_path / "rgb.png")
    Image.fromarray(_halves(40, 60).astype(np.uint16) * 300).save(tmp_path / "wide.png")
    bank = ObjectBank.from_files([(tmp_path / "image.png", tmp_path / "half.png")], 0.002, 480)
    assert [(c, obj.shape, int(obj.sum())) for _, c, obj in bank.objects] == [
        (0, (40, 60), 1200),
        (1, (40, 60), 1200),
    ]
    for name, message in [
        ("rgb.png", "pixel format 'RGB'"),
        ("wide.png", "'I;16'"),
        ("gone.png", "not exist"),
    ]:
        with pytest.raises(MaskError, match=f"{name}.*{message}"):
            ObjectBank.from_files([(tmp_path / "image.png", tmp_path / name)], 0.002, 480)


def test_a_click_model_that_cannot_train_leaves_the_trained_version_with_a_warning(tmp_path):
    """The segmentation model was trained (maybe for hours) before the click model's turn: done masks
    whose objects are all tiny must cost only the click model, not the run."""
    from segstudio.ml.manifest import Sample
    from segstudio.ml.train import Trainer

    Image.fromarray(_frame(40, 60)).save(tmp_path / "image.png")
    Image.fromarray(np.full((40, 60), 255, np.uint8)).save(tmp_path / "mask.png")
    warnings, events = [], []
    trainer = SimpleNamespace(
        config=SimpleNamespace(click_model_steps=2, click_model_time_s=None, seed=0),
        parts=SimpleNamespace(device="cpu"),
        manifest=SimpleNamespace(train=[Sample(str(tmp_path / "image.png"), str(tmp_path / "mask.png"))]),
        _evidence_model=lambda: None,
        progress=SimpleNamespace(emit=lambda *a, **k: events.append((a, k)), wants_batch=lambda: False),
        out_dir=tmp_path,
        warn=warnings.append,
    )
    Trainer._train_click_model(trainer, lambda: False)
    assert warnings == [
        "this version has no click model: no objects to train the click model on: "
        "no labelled region in 1 done mask(s)"
    ]
    assert not events and not (tmp_path / "click_model.pt").exists()
