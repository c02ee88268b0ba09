"""Shared test configuration: Qt offscreen, isolated settings, third-party test data location."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
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
    yield


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
