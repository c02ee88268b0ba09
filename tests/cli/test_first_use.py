"""First-use CLI messages: a mistyped command, and a warning whenever the model is untrained."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main


def test_mistyped_command_is_named_before_any_display_check(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)  # would otherwise skip the display check
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "'frobnicate' is neither a command nor a folder" in err and "predict" in err
    assert "graphical display" not in err


def test_missing_gui_folder_is_reported_before_a_window_opens(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere does not exist" in err and "graphical display" not in err


def test_untrained_model_is_announced_as_meaningless(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path / "images"
        folder.mkdir()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
            folder / "a.png"
        )
        code = main(
            [
                "predict",
                str(folder),
                "--weights",
                "none",
                "--model",
                "lraspp_mobilenet_v3_large",
                "--device",
                "cpu",
                "--precision",
                "float32",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert code == 0
    assert "UNTRAINED" in err and "warning: this model is untrained" in err and "--weights FILE" in err
    # predictions alone are not exported, and the message says how they become masks
    assert (
        main(["export", str(folder), "--format", "voc", "--out", str(tmp_path / "out"), "--include", "mask"])
        == 2
    )
    err = capsys.readouterr().err
    assert "Model predictions are not exported" in err and "press A to accept" in err


def test_predict_on_a_folder_without_images_says_so_before_loading_a_model(tmp_path, capsys, monkeypatch):
    import segstudio.ml.weights as weights

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded for an empty folder")

    monkeypatch.setattr(weights, "load_model", no_model)
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["predict", str(tmp_path), "--weights", "none"]) == 2
    err = capsys.readouterr().err
    assert "no images in" in err and ".jpg" in err
