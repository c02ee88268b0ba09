"""Shared test configuration: Qt offscreen, isolated settings, third-party test data location."""

from __future__ import annotations

import gc
import ipaddress
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

# Set before anything imports Qt: tests never need a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Keep torch from oversubscribing the 2-core CI machine and from touching the user's cache.
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_TESTDATA = REPO_ROOT.parent / "shared" / "testdata"
# `from tests.fakes import ...` works under a bare `pytest` too (importlib mode adds no path itself).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Give every test its own TORCH_HOME and Qt settings location; never the user's."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("SEGSTUDIO_SETTINGS_DIR", str(home / "settings"))
    monkeypatch.setenv("SEGSTUDIO_LOG_DIR", str(home / "logs"))
    yield
    _close_log_files()


#: collections that ran off the main thread once the GUI-thread collector was installed
_WORKER_COLLECTIONS: list[str] = []


def _gc_off_main_thread(phase: str, info: dict) -> None:
    collector = sys.modules.get("segstudio.gui.gui_thread_gc")
    if phase == "start" and getattr(collector, "installed", False):  # None, or still importing
        thread = threading.current_thread()
        if thread is not threading.main_thread():
            _WORKER_COLLECTIONS.append(f"generation {info['generation']} on thread {thread.name!r}")


gc.callbacks.append(_gc_off_main_thread)


@pytest.fixture(autouse=True)
def _gui_thread_gc():
    """As in the app: once Qt is up, cycles are collected on the GUI (test) thread only, never by a
    worker thread that happens to allocate (segstudio/gui/gui_thread_gc.py): one that did (automatic
    collection switched back on, or a worker calling gc.collect()) fails the test, deterministically,
    instead of the rare segfault it would cause."""
    if "PySide6.QtWidgets" in sys.modules:
        from segstudio.gui.gui_thread_gc import install_gui_thread_gc

        install_gui_thread_gc()
    _WORKER_COLLECTIONS.clear()
    yield
    if not gc.isenabled():  # tests that run no event loop still get their cycles freed, here
        from segstudio.gui.gui_thread_gc import collect_due

        collect_due()
    assert not _WORKER_COLLECTIONS, f"garbage collected off the GUI thread: {_WORKER_COLLECTIONS[:3]}"


def _close_log_files() -> None:
    """A test that set up logging leaves no file handler (into its tmp folder) for the next test."""
    import logging

    logger = logging.getLogger("segstudio")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _is_local(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # AF_UNIX paths


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never reach the network: a stray weights download fails at once instead of stalling."""
    real_connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: object) -> None:
        if not _is_local(address):
            raise OSError(f"network access is disabled in tests (tried to connect to {address!r})")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield


@pytest.fixture
def one_torch_thread():
    """Torch tests run on one thread: no oversubscription of the 2-core CI machine by parallel work."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def forget_learned_engine():
    """`use_click_model` registers the "learned" engine process-wide with a test's tmp file: unregister it
    afterwards, so the next test starts without it."""
    yield
    from segstudio.core.interactive.engines import ENGINES

    ENGINES.pop("learned", None)


@pytest.fixture
def offline_downloads(monkeypatch):
    """torch.hub downloads fail at once with the error an offline machine gives (URLError)."""
    import urllib.error

    torch = pytest.importorskip("torch")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture
def shared_testdata() -> Path:
    """The team's third-party test data; skips with the reason when `../shared` is absent."""
    if not SHARED_TESTDATA.is_dir():
        pytest.skip(f"third-party test data not found at {SHARED_TESTDATA} (only in CI and team checkouts)")
    return SHARED_TESTDATA


@pytest.fixture
def labelme_example(shared_testdata: Path) -> Path:
    path = shared_testdata / "labelme_voc_example"
    if not path.is_dir():
        pytest.skip(f"labelme example data not found at {path}")
    return path


@pytest.fixture
def tiny_sam_checkpoint(tmp_path, monkeypatch, one_torch_thread):
    """A randomly initialised, tiny SAM saved as a checkpoint (encoder width 48, registered for this
    test only), so the SAM engine's plumbing is tested in seconds and never with a download."""
    pytest.importorskip("segment_anything")
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    from segstudio.core.interactive import engines
    from segstudio.ml import sam_engine

    def tiny_sam(checkpoint=None):
        torch.manual_seed(0)
        return Sam(
            image_encoder=ImageEncoderViT(
                depth=1,
                embed_dim=48,
                img_size=1024,
                mlp_ratio=2,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=2,
                patch_size=16,
                qkv_bias=True,
                use_rel_pos=False,
                global_attn_indexes=(),
                window_size=0,
                out_chans=256,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=256, num_heads=8),
                transformer_dim=256,
                iou_head_depth=3,
                iou_head_hidden_dim=64,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        ).eval()

    monkeypatch.setitem(sam_engine.SAM_ARCHS, 48, ("tiny", tiny_sam))
    monkeypatch.setattr(engines, "ENGINES", dict(engines.ENGINES))  # "sam" stays registered in this test only
    path = tmp_path / "sam_tiny.pth"
    torch.save(tiny_sam().state_dict(), path)
    return path
