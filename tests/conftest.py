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


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store per test module; each test gets its own experiment in it (make_cfg)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def make_cfg(store, data_root, request):
    """make_cfg(*overrides): conf/config.yaml with SMALL, the real data, this module's store and an
    experiment named after the test, then `overrides`."""
    import re

    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR, register_configs
    from harness import SMALL

    register_configs()
    experiment = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)

    def make(*overrides):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[*SMALL, f"data.dir={data_root}", f"mlflow.tracking_uri={store}",
                                                f"mlflow.experiment={experiment}", *overrides])
    return make


@pytest.fixture
def quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster on 127.0.0.1 for the whole session (tests/engines.py); fails if it cannot start."""
    from engines import postgres_cluster

    with postgres_cluster() as pg:
        yield pg


@pytest.fixture(scope="session")
def pg_server(postgres, tmp_path_factory):
    """(URL, artifact folder) of one `mlflow server` on the cluster's database `mlflow`, for the session."""
    from engines import mlflow_server

    folder = tmp_path_factory.mktemp("pg-server")
    with mlflow_server(postgres.database("mlflow"), folder, "--artifacts-destination", str(folder / "art")) as uri:
        yield uri, folder / "art"


@pytest.fixture(scope="session")
def slurm():
    """The one-node SLURM cluster of scripts/slurm-local for the session (state in a new /tmp folder);
    SLURM_CONF (and PATH, for its sacct) point this process and the commands it starts at it. Fails if
    it cannot start."""
    import tempfile

    from engines import slurm_cluster

    with slurm_cluster(tempfile.mkdtemp(prefix="scratchnn-slurm-")) as cluster:
        old = {key: os.environ.get(key) for key in ("SLURM_CONF", "PATH")}
        os.environ.update({key: cluster.env[key] for key in old})
        try:
            yield cluster
        finally:
            for key, value in old.items():
                os.environ.pop(key, None) if value is None else os.environ.update({key: value})
