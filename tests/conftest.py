"""Shared fixtures. Tests never download: SCRATCHNN_OFFLINE=1 is set, and any socket
connection to an address other than loopback fails the test that makes it."""

import ipaddress
import os
import socket
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["SCRATCHNN_OFFLINE"] = "1"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _loopback_only(connect):
    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise AssertionError(f"test tried to reach {address}; only loopback is allowed")
        return connect(self, address)
    return guarded


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _loopback_only(socket.socket.connect_ex))


@pytest.fixture(scope="session")
def data_root():
    """The shared data folder: $SCRATCHNN_DATA_DIR, else ../shared/data beside the project."""
    root = Path(os.environ.get("SCRATCHNN_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not (root / "mnist").is_dir():
        pytest.fail(f"real MNIST not found under {root}; set SCRATCHNN_DATA_DIR")
    return root


@pytest.fixture(scope="session")
def mnist(data_root):
    """Flattened, [0, 1]-scaled float32 MNIST: ((X_train, y_train), (X_test, y_test))."""
    import warnings

    from scratchnn import datasets, preprocessing as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.UnverifiedDataWarning)
        (X, y), (Xt, yt) = datasets.load_mnist("mnist", data_dir=data_root)
    return (pp.scale(pp.flatten(X)), y), (pp.scale(pp.flatten(Xt)), yt)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
